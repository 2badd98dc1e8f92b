"""Cleanup: only the plugin's own old files go; symlinks and foreign files are never touched."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from tests.conftest import REAL_LOOKING_KEYS
from tests.fakes.clock import FakeClock
from tests.support.harness import make_event
from utils.imaging.cleanup import CleanupTask, sweep
from utils.imaging.held import HeldFiles

HOUR = 3600.0


def _exists(path: Path) -> bool:
    return path.exists()


def _touch(path: Path, age: float, data: bytes = b"x") -> Path:
    path.write_bytes(data)
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def _old_symlink(link: Path, target: Path, age: float) -> None:
    link.symlink_to(target)
    stamp = time.time() - age
    os.utime(link, (stamp, stamp), follow_symlinks=False)


def test_sweep_removes_only_old_files_of_our_own(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    outside = _touch(tmp_path / "precious.png", 2 * HOUR)
    old_own = [
        _touch(images / f"gemini_image_20261101000000_{n}.{ext}", 2 * HOUR)
        for n, ext in enumerate(["png", "jpg", "webp", "gif"])
    ]
    stale_temp = _touch(images / ".gemini_image_20261101000000_9.png.part", 2 * HOUR)
    fresh_own = _touch(images / "gemini_image_20261101000000_new.png", 60)
    fresh_temp = _touch(images / ".gemini_image_20261101000000_w.png.part", 60)
    foreign = [
        _touch(images / "photo.png", 2 * HOUR),
        _touch(images / "gemini_image_notes.txt", 2 * HOUR),
        _touch(images / "gemini_image_x.svg", 2 * HOUR),
        _touch(images / "my_gemini_image_1.png", 2 * HOUR),
        _touch(images / ".gitkeep", 2 * HOUR),
    ]
    own_named_dir = images / "gemini_image_dir.png"
    own_named_dir.mkdir()
    os.utime(own_named_dir, (time.time() - 2 * HOUR,) * 2)
    link_out = images / "gemini_image_link_out.png"
    _old_symlink(link_out, outside, 2 * HOUR)
    link_in = images / "gemini_image_link_in.png"
    _old_symlink(link_in, foreign[0], 2 * HOUR)

    report = sweep(images, max_age=15 * 60)

    assert report.removed == len(old_own) + 1
    assert not any(p.exists() for p in [*old_own, stale_temp])
    assert all(p.exists() for p in [fresh_own, fresh_temp, *foreign, outside, own_named_dir])
    assert link_out.is_symlink() and link_in.is_symlink()
    assert outside.read_bytes() == b"x" and foreign[0].read_bytes() == b"x"


def test_sweep_of_a_missing_directory_is_a_no_op(tmp_path):
    assert sweep(tmp_path / "nope", max_age=60).removed == 0


async def _until(condition, limit: float = 10.0) -> None:
    """Wait for a condition without asserting how long it took (bounded so a bug fails)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


async def test_task_sweeps_at_start_then_periodically_until_stopped(tmp_path):
    """The waits between sweeps are on the clock: the next sweep comes when it has moved."""
    clock = FakeClock(wall_start=time.time())
    first = _touch(tmp_path / "gemini_image_20261101000000_a.png", HOUR)
    task = CleanupTask(tmp_path, lambda: 60.0, interval=30.0, clock=clock)
    task.start()
    try:
        assert task.running
        await _until(lambda: not first.exists() and clock.cleanup_sleeps == [30.0])
        second = _touch(tmp_path / "gemini_image_20261101000000_b.png", HOUR)
        clock.advance(29)
        await asyncio.sleep(0.05)
        assert second.exists()  # not yet the interval
        clock.advance(1)
        await _until(lambda: not second.exists() and clock.cleanup_sleeps == [30.0, 30.0])
    finally:
        await task.stop()
    assert not task.running
    third = _touch(tmp_path / "gemini_image_20261101000000_c.png", HOUR)
    clock.advance(HOUR)
    await asyncio.sleep(0.05)
    assert third.exists()  # nothing sweeps after stop()


async def test_the_plugin_runs_cleanup_with_the_configured_retention(
    astrbot, fake, plugin_config, virtual_time
):
    assert astrbot.plugin.pipeline.cleanup.running  # started by initialize()
    pipeline = virtual_time.plugin.pipeline
    event = make_event()
    await virtual_time.run_tool(event, image_description="a cat")
    generated = Path(event.sent_images()[0].path)
    virtual_time.advance(10 * 60)

    await pipeline.cleanup.run_once()
    assert _exists(generated)  # 10 minutes < the default 15

    # The conversation memory forgets it then (it kept it from its delivery), and it goes.
    plugin_config["image_retention_minutes"] = 5
    await pipeline.cleanup.run_once()
    assert not _exists(generated)


async def test_terminate_stops_cleanup_and_background_work(astrbot, fake):
    config = {
        "openrouter_api_keys": [REAL_LOOKING_KEYS[0]],
        "custom_api_base": fake.base_url,
    }
    plugin = type(astrbot.plugin)(context=astrbot.context, config=config)
    await plugin.initialize()
    assert plugin.pipeline.cleanup.running
    await plugin.terminate()
    assert not plugin.pipeline.cleanup.running
    assert plugin.pipeline.closed


def _aged(path: Path, now: float, age: float) -> Path:
    """`path` (written if missing) last changed `age` seconds before `now` (epoch seconds)."""
    if not path.exists():
        path.write_bytes(b"x")
    os.utime(path, (now - age, now - age))
    return path


async def test_a_file_awaiting_delivery_survives_a_sweep_with_retention_one_minute(
    virtual_time, fake, plugin_config
):
    plugin_config["image_retention_minutes"] = 1
    pipeline = virtual_time.plugin.pipeline
    store = pipeline.shared.store
    event = make_event()
    event.send_gate = asyncio.Event()  # a slow adapter: the picture waits to go out
    call = asyncio.ensure_future(virtual_time.run_tool(event, image_description="a held cat"))
    await _until(lambda: len(store.held) == 1)

    now = virtual_time.wall()
    [held] = [p for p in store.directory.iterdir() if p.name in store.held]
    _aged(held, now, HOUR)
    stray = _aged(store.directory / "gemini_image_20260101000000_stray.png", now, HOUR)
    # Older than the retention but not than a run: another instance's request may still use it.
    recent = _aged(store.directory / "gemini_image_20260101000000_recent.png", now, 120)
    await pipeline.cleanup.run_once()
    assert held.exists() and recent.exists()
    assert not stray.exists()  # the sweep did run with a 1 minute retention

    event.send_gate.set()
    await call
    [image] = event.sent_images()
    assert Path(image.path) == held
    # Only the conversation memory holds it now (it keeps delivered pictures for the
    # retention time). The request let go at its end: its time counts from then, not from its
    # making.
    assert len(store.held) == 1
    assert pipeline.shared.memory.snapshot()
    await pipeline.shared.memory.close()
    assert len(store.held) == 0
    assert held.stat().st_mtime == pytest.approx(virtual_time.wall(), abs=1)
    await pipeline.cleanup.run_once()
    assert held.exists()
    recent.unlink()


def test_a_file_two_holders_hold_stays_until_both_let_go(tmp_path):
    held = HeldFiles()
    path = _aged(tmp_path / "gemini_image_20260101000000_shared.png", time.time(), HOUR)
    first, second = held.hold(), held.hold()
    first.add([path])
    second.add([path, path])  # holding twice from one holder counts once
    first.release(time.time() - HOUR)
    assert sweep(tmp_path, max_age=60, held=held).removed == 0
    second.release(time.time() - HOUR)  # its time set an hour back: old, and held by no one
    assert path.name not in held
    assert sweep(tmp_path, max_age=60, held=held).removed == 1
