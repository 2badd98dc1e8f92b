"""The request pipeline: a request that outlives its tool call, and reload while one runs."""

from __future__ import annotations

import asyncio
import gc

import aiohttp
import pytest

from tests.fakes.openrouter import Reply, completion, data_url, make_png, png_prompt
from tests.support.harness import image_path, make_event
from utils.chat.pipeline import UNLOAD_WAIT


@pytest.fixture
def short_tool_timeout(tool_timeout) -> None:
    """AstrBot's tool-call timeout at 2 s (the tool answers after 1 s), where the running
    AstrBot keeps it."""
    tool_timeout(2)


def slow_success(delay: float):
    return lambda r: Reply(json_body=completion(images=[data_url(make_png(r.prompt))]), delay=delay)


async def test_a_slow_picture_reaches_the_chat_after_the_tool_answered(
    astrbot, fake, plugin_config, short_tool_timeout
):
    fake.default = slow_success(1.5)
    event = make_event()

    # AstrBot's executor raises if the tool has not answered within its timeout.
    texts = await astrbot.run_tool(event, timeout=2, image_description="a slow cat")
    assert "还在生成中" in texts[0] and "不需要再次调用" in texts[0]
    assert event.sent_images() == []

    await astrbot.plugin.pipeline.drain()
    [image] = astrbot.platform.images()
    assert png_prompt(image_path(image).read_bytes()) == "a slow cat"
    assert astrbot.platform.sent[0][0] == event.unified_msg_origin
    assert len(fake.chat_requests()) == 1


async def test_a_slow_failure_is_told_in_the_chat(astrbot, fake, plugin_config, short_tool_timeout):
    fake.default = lambda _r: Reply.error(400, "Invalid request", delay=1.5)
    event = make_event()
    texts = await astrbot.run_tool(event, timeout=2, image_description="a cat")
    assert "还在生成中" in texts[0]
    await astrbot.plugin.pipeline.drain()
    assert (
        astrbot.platform.text()
        == "图像服务拒绝了这次请求（请求格式或参数不被接受），请换个描述或图片再试。"
    )


async def test_a_reload_waits_for_the_request_in_flight(astrbot, fake, plugin_config):
    fake.default = slow_success(1.0)
    event = make_event()
    call = asyncio.ensure_future(astrbot.run_tool(event, image_description="reload cat"))
    await asyncio.sleep(0.25)
    await astrbot.reload()  # what a config save in the panel does
    texts = await call
    assert "已生成 1 张图片" in texts[0]
    [image] = event.sent_images()
    assert png_prompt(image_path(image).read_bytes()) == "reload cat"


async def test_no_progress_note_when_every_key_is_known_invalid(astrbot, fake, plugin_config):
    plugin_config["progress_message"] = True
    fake.default = lambda _r: Reply.error(401, "No auth credentials found")
    first = make_event()
    await astrbot.run_tool(first, image_description="a cat")
    assert "正在生成图片" in first.sent_text()  # it could start: the key was not known bad

    second = make_event()
    texts = await astrbot.run_tool(second, image_description="a cat")
    assert "密钥无效" in texts[0]
    assert second.sent == []  # no progress note for a request that cannot start
    assert len(fake.chat_requests()) == 1


async def test_a_progress_note_the_adapter_refuses_does_not_cost_the_picture(
    astrbot, fake, plugin_config, plugin_log
):
    plugin_config["progress_message"] = True
    fake.enqueue(Reply(json_body=completion(images=[data_url(make_png("cat"))]), delay=0.3))
    event = make_event()
    event.send_error = RuntimeError("adapter down")
    call = asyncio.ensure_future(astrbot.run_tool(event, image_description="a cat"))
    for _ in range(300):
        if fake.chat_requests():
            break
        await asyncio.sleep(0.01)
    event.send_error = None  # the adapter is back before the picture is
    texts = await call
    assert "已生成 1 张图片" in texts[0] and len(event.sent_images()) == 1
    assert "正在生成图片" not in event.sent_text()
    notes = [r.getMessage() for r in plugin_log if "progress message not sent" in r.getMessage()]
    assert notes == [
        "gemini-pic-gen: progress message not sent: sending to the chat failed: RuntimeError"
    ]


# --- unloading ------------------------------------------------------------------------------------


def _live_sessions() -> set[int]:
    """The aiohttp sessions alive and open in this process (none patched: found through gc)."""
    return {id(o) for o in gc.get_objects() if type(o) is aiohttp.ClientSession and not o.closed}


async def _until(condition, limit: float = 10.0) -> None:
    """Wait for a condition without asserting how long it took (bounded so a bug fails)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        assert loop.time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


async def test_unload_with_a_request_in_flight_returns_within_its_bound_and_it_still_delivers(
    virtual_time, fake, plugin_log
):
    fake.default = slow_success(0.6)  # the model works 0.6 real seconds
    plugin = virtual_time.plugin
    session = plugin.pipeline.http()
    event = make_event()
    call = asyncio.ensure_future(virtual_time.run_tool(event, image_description="late cat"))
    await _until(lambda: len(fake.chat_requests()) == 1)

    before = virtual_time.clock.now
    await plugin.terminate()
    # It waited its bound on the clock (virtual: no real time) and no longer.
    assert virtual_time.clock.now - before == UNLOAD_WAIT
    assert not call.done()
    assert not plugin.pipeline.shared.released and not session.closed  # still in use

    texts = await call
    assert "已生成 1 张图片" in texts[0]
    [image] = event.sent_images()
    assert png_prompt(image_path(image).read_bytes()) == "late cat"
    # Let go once the last request ended: the session and the ledger (it recorded the picture).
    await _until(lambda: plugin.pipeline.shared.released)
    await _until(lambda: session.closed and not plugin.spend.ledger.is_open)
    assert any("still running" in r.getMessage() for r in plugin_log)


async def test_no_client_session_is_created_after_unload(astrbot, fake, plugin_config):
    plugin = type(astrbot.plugin)(astrbot.context, plugin_config)
    await plugin.initialize()
    session = plugin.pipeline.http()
    await plugin.terminate()
    assert session.closed
    before = _live_sessions()

    with pytest.raises(Exception, match="unloaded") as raised:
        plugin.pipeline.http()
    assert type(raised.value).__name__ == "PluginClosedError"
    # /画图统计 and the page's key call reach for the session too: they say so, open nothing.
    stats = await plugin.spend.stats()
    assert stats.report is None and stats.keys is None  # "unavailable", nothing asked upstream
    # A request AstrBot still routes to the unloaded instance is refused, before any upstream call.
    texts = await astrbot.run_tool(make_event(), plugin=plugin, image_description="a cat")
    assert "正在重新加载" in texts[0]
    assert fake.chat_requests() == []
    assert _live_sessions() <= before


async def test_unload_awaits_the_start_up_check_and_cleanup(astrbot, fake, plugin_config):
    fake.models_gate = asyncio.Event()  # the start-up look at the model list hangs
    plugin = type(astrbot.plugin)(astrbot.context, plugin_config)
    await plugin.initialize()
    await _until(lambda: fake.model_requests())
    check = plugin.pipeline._startup_check
    assert check is not None and not check.done()
    await plugin.terminate()
    assert check.done() and plugin.pipeline._startup_check is None
    assert not plugin.pipeline.cleanup.running
