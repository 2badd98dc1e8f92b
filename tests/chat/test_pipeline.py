"""The request pipeline: a request that outlives its tool call, and reload while one runs."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes.openrouter import Reply, completion, data_url, make_png, png_prompt
from tests.support.harness import image_path, make_event


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
    loop = asyncio.get_running_loop()
    started = loop.time()

    texts = await astrbot.run_tool(event, timeout=2, image_description="a slow cat")
    answered = loop.time() - started
    assert "还在生成中" in texts[0] and "不需要再次调用" in texts[0]
    assert answered < 1.5  # before AstrBot would have cancelled the call, and the picture
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
