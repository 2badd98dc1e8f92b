"""The conversation memory on its own: a real image store and worker pool in a temp directory,
on a virtual clock. What it keeps, for whom, for how long, within which bounds, on disk and
back, and what the cleanup may remove meanwhile. (The whole plugin's use of it:
tests/plugin/test_conversations.py.)"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.fakes.clock import FakeClock
from tests.fakes.openrouter import make_png, reasoning_details_for
from tests.support.harness import make_event
from utils.chat.memory import (
    FILE_NAME,
    MAX_CONVERSATIONS,
    MAX_REASONING_BYTES,
    ConversationMemory,
    Turn,
    _write,
    bounded_turn,
    conversation_of,
)
from utils.core.workers import CpuPool
from utils.imaging.cleanup import sweep
from utils.imaging.store import ImageStore

RETENTION = 900.0
ALICE = "test:group:20002:user:10001"
BOB = "test:group:20002:user:10002"


class Setup:
    def __init__(self, root: Path, clock: FakeClock, cpu: CpuPool) -> None:
        self.root = root
        self.clock = clock
        self.cpu = cpu
        self.store = ImageStore(root / "images")
        self.retention = RETENTION

    def memory(self, **bounds: int) -> ConversationMemory:
        """A memory as a new plugin instance makes one (it reads the file on first use)."""
        return ConversationMemory(
            self.root / "data" / FILE_NAME,
            self.store,
            self.cpu,
            self.clock,
            lambda: self.retention,
            **bounds,
        )

    def picture(self, prompt: str) -> str:
        """A delivered picture in the store, its time that of the delivery (a request sets it
        when it lets go of its pictures); its name."""
        path = self.store.save(make_png(prompt)).path
        os.utime(path, (self.clock.wall(), self.clock.wall()))
        return path.name

    def turn(self, prompt: str, pictures: int = 1, **fields) -> Turn:
        names = [self.picture(f"{prompt} {i}") for i in range(pictures)]
        return bounded_turn(
            names, prompt, "google/gemini-3-pro-image-preview", self.clock.wall(), **fields
        )

    async def on_disk(self, memory: ConversationMemory) -> dict:
        """The file once the memory's writes so far are done (it writes behind)."""
        await memory.flush()
        return json.loads((self.root / "data" / FILE_NAME).read_text(encoding="utf-8"))

    def sweep(self) -> int:
        """What the cleanup would remove now (retention as configured)."""
        return sweep(
            self.store.directory, self.retention, self.clock.wall(), self.store.held
        ).removed


@pytest_asyncio.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    cpu = CpuPool(1)
    yield Setup(tmp_path, FakeClock(), cpu)
    cpu.close()


async def test_a_turn_is_recalled_in_its_own_conversation_only(setup):
    memory = setup.memory()
    turn = setup.turn("a red apple")
    await memory.remember(ALICE, turn)

    hold = setup.store.held.hold()
    assert await memory.recall(ALICE, hold) == turn
    assert [p.name for p in hold.paths] == list(turn.files)  # the request holds them now
    assert await memory.recall(BOB, setup.store.held.hold()) is None


def test_conversations_are_told_apart_by_group_user_chat_and_platform():
    keys = {
        conversation_of(make_event()),
        conversation_of(make_event(sender_id="10002")),  # another user in the same group
        conversation_of(make_event(group_id="30003")),  # the same user in another group
        conversation_of(make_event(group_id=None)),  # the same user's private chat
        conversation_of(make_event(platform_id="qq-2")),  # another bot, same group and user
        conversation_of(make_event(platform="telegram", platform_id="tg")),
    }
    assert len(keys) == 6
    assert conversation_of(make_event("other words")) == conversation_of(make_event())


async def test_the_newest_turn_is_recalled_and_only_it_keeps_its_reasoning(setup):
    memory = setup.memory()
    details = reasoning_details_for("a red apple")
    first = setup.turn("a red apple", text="Here you go.", reasoning_details=details)
    await memory.remember(ALICE, first)
    setup.clock.advance(10)
    second = setup.turn("make it night", text="Night now.", reasoning_details=details)
    await memory.remember(ALICE, second)

    assert await memory.recall(ALICE, setup.store.held.hold()) == second
    older, newest = memory.snapshot()[ALICE]
    assert older == first.plain() and older.reasoning_details == () and older.text == ""
    assert newest.reasoning_details == tuple(details)
    assert [
        t["reasoning_details"] for t in (await setup.on_disk(memory))["conversations"][ALICE]
    ] == [
        [],
        details,
    ]


async def test_turns_and_conversations_are_bounded_and_what_is_dropped_is_let_go(setup):
    memory = setup.memory(max_turns=2, max_conversations=2)
    turns = []
    for i in range(3):
        turns.append(setup.turn(f"picture {i}"))
        await memory.remember(ALICE, turns[-1])
        setup.clock.advance(1)
    assert memory.snapshot()[ALICE] == (turns[1].plain(), turns[2])
    assert turns[0].files[0] not in setup.store.held  # the dropped turn's file is let go
    assert all(t.files[0] in setup.store.held for t in turns[1:])

    await memory.remember(BOB, setup.turn("bob's"))
    await memory.remember("test:private:10003", setup.turn("carol's"))
    # Alice drew least recently: her conversation goes.
    assert set(memory.snapshot()) == {BOB, "test:private:10003"}
    assert not any(t.files[0] in setup.store.held for t in turns)
    assert set((await setup.on_disk(memory))["conversations"]) == {BOB, "test:private:10003"}


async def test_a_turn_keeps_its_first_pictures_and_cut_texts(setup):
    turn = setup.turn("x" * 5000, pictures=6, text="y" * 5000)
    assert len(turn.files) == 4
    assert len(turn.prompt) == 1000 and len(turn.text) == 500


async def test_reasoning_details_over_the_cap_are_not_kept(setup):
    huge = [{"type": "reasoning.encrypted", "data": "A" * MAX_REASONING_BYTES, "index": 0}]
    assert setup.turn("a red apple", reasoning_details=huge).reasoning_details == ()
    small = reasoning_details_for("a red apple")
    assert setup.turn("a red apple", reasoning_details=small).reasoning_details == tuple(small)


async def test_expiry_forgets_the_turn_and_lets_the_sweep_remove_its_files(setup):
    memory = setup.memory()
    turn = setup.turn("a red apple")
    await memory.remember(ALICE, turn)
    path = setup.store.directory / turn.files[0]

    setup.clock.advance(RETENTION - 1)
    assert await memory.expire() == 0
    assert setup.sweep() == 0  # held, whatever the file's time says
    setup.clock.advance(1)
    assert await memory.recall(ALICE, setup.store.held.hold()) is None  # expired
    assert await memory.expire() == 1
    assert setup.sweep() == 1 and not path.exists()
    assert (await setup.on_disk(memory))["conversations"] == {}


async def test_a_turn_whose_file_is_gone_is_not_offered(setup):
    memory = setup.memory()
    older, newer = setup.turn("older"), setup.turn("newer")
    await memory.remember(ALICE, older)
    await memory.remember(ALICE, newer)
    (setup.store.directory / newer.files[0]).unlink()  # removed by hand
    assert await memory.recall(ALICE, setup.store.held.hold()) == older.plain()


async def test_read_back_by_the_next_instance_within_the_retention(setup):
    memory = setup.memory()
    details = reasoning_details_for("a red apple")
    turn = setup.turn("a red apple", text="Here you go.", reasoning_details=details)
    await memory.remember(ALICE, turn)
    await memory.close()  # the plugin unloads: its holds go
    assert turn.files[0] not in setup.store.held

    setup.clock.advance(60)
    again = setup.memory()  # the next instance, after a reload or a restart
    assert await again.recall(ALICE, setup.store.held.hold()) == turn
    assert turn.files[0] in setup.store.held  # held again by the new instance
    assert not list(setup.root.joinpath("data").glob(".*tmp"))  # no temporary file left

    setup.clock.advance(RETENTION)
    assert await setup.memory().recall(ALICE, setup.store.held.hold()) is None


def test_a_reader_never_sees_a_half_written_file(tmp_path: Path):
    """Another instance reads the file while this one writes it: every read is a whole state,
    the old or the new one, never a truncated file (as a plain rewrite in place would give)."""
    path = tmp_path / "memory.json"
    states = [{"n": n, "pad": "x" * 400_000} for n in range(2)]
    _write(path, states[0])
    seen: list[object] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                seen.append(json.loads(path.read_bytes())["n"])
            except (ValueError, KeyError) as exc:
                seen.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(40):
            _write(path, states[n % 2])
    finally:
        done.set()
        reader.join()
    assert seen and set(seen) <= {0, 1}


async def test_after_close_nothing_is_written_or_offered(setup):
    memory = setup.memory()
    await memory.remember(ALICE, setup.turn("before"))
    before = await setup.on_disk(memory)
    await memory.close()
    await memory.remember(ALICE, setup.turn("after the unload"))
    assert (await setup.on_disk(memory)) == before
    assert await memory.recall(ALICE, setup.store.held.hold()) is None


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"version": 1, "conversations": []}',
        json.dumps(
            {
                "version": 1,
                "conversations": {
                    ALICE: [
                        {"files": ["../../etc/passwd"], "at": 1.0e12, "prompt": "x"},
                        {"files": "gemini_image_x.png", "at": 1.0e12},
                        {"files": ["gemini_image_gone.png"], "at": 1.0e12, "references": "x"},
                        "junk",
                    ]
                },
            }
        ).encode(),
    ],
    ids=["not JSON", "wrong shape", "paths and junk"],
)
async def test_a_damaged_file_is_read_as_nothing_remembered(setup, content, plugin_log):
    path = setup.root / "data" / FILE_NAME
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    crashed = path.parent / f".{FILE_NAME}.0123456789ab.tmp"  # a write cut off by a crash
    crashed.write_bytes(b'{"version": 1, "conv')
    memory = setup.memory()
    assert await memory.recall(ALICE, setup.store.held.hold()) is None
    assert memory.snapshot() == {}
    if content.startswith(b"{not"):
        assert any("conversation memory not read" in r.getMessage() for r in plugin_log)
    assert not crashed.exists()
    await memory.remember(ALICE, setup.turn("a fresh start"))
    assert list((await setup.on_disk(memory))["conversations"]) == [ALICE]


async def test_requests_of_one_chat_at_once_are_all_remembered(setup):
    memory = setup.memory(max_turns=50)
    turns = [setup.turn(f"picture {i}") for i in range(20)]
    await asyncio.gather(*(memory.remember(ALICE, t) for t in turns))
    remembered = memory.snapshot()[ALICE]
    assert sorted(t.prompt for t in remembered) == sorted(t.prompt for t in turns)
    on_disk = (await setup.on_disk(memory))["conversations"][ALICE]
    assert [t["prompt"] for t in on_disk] == [t.prompt for t in remembered]


async def test_a_memory_that_cannot_write_still_remembers_for_this_run(setup, plugin_log):
    (setup.root / "data").write_text("a file where the directory should be")
    memory = setup.memory()
    turn = setup.turn("a red apple")
    await memory.remember(ALICE, turn)
    assert await memory.recall(ALICE, setup.store.held.hold()) == turn
    await memory.flush()
    warnings = [r for r in plugin_log if r.levelno == logging.WARNING]
    assert any("conversation memory not saved" in r.getMessage() for r in warnings)


async def test_the_state_on_disk_is_bounded(setup):
    """The biggest conversation there can be: three turns of four pictures, prompts and texts
    of Chinese characters over their caps, reasoning details just under theirs. The file then
    holds at most MAX_CONVERSATIONS of these (README: how big the memory can grow)."""
    memory = setup.memory()
    details = [{"type": "reasoning.encrypted", "data": "A" * (MAX_REASONING_BYTES - 100)}]
    for _ in range(5):
        turn = setup.turn("画" * 3000, pictures=6, text="好" * 3000, reasoning_details=details)
        assert turn.reasoning_details  # kept: under the cap
        await memory.remember(ALICE, turn)
    await memory.flush()
    size = (setup.root / "data" / FILE_NAME).stat().st_size
    # The newest turn: 32 KB of details, 3 KB of prompt, 1.5 KB of text; two older turns of
    # 3 KB prompts; names and fields besides.
    assert 40_000 < size < 46_000, size
    assert size * MAX_CONVERSATIONS < 9 * 1024 * 1024
