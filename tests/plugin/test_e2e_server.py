"""End to end: a real `astrbot run` server, a WebChat user, a fake chat LLM and a fake OpenRouter.

One server serves the whole module (it takes ~10-20 s to start). When a test fails, the part of
the server log written during that test is printed with the failure.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from tests.fakes.chat_llm import AFTER_TOOL_TEXT, FakeChatLLM
from tests.fakes.openrouter import FakeOpenRouter, Reply, completion, data_url, make_png, png_prompt
from tests.support import astrbot_compat
from tests.support.astrbot_compat import count_plugin_terminations
from tests.support.e2e_server import AstrBotServer
from tests.support.harness import PLUGIN_DIR_NAME, REPO_ROOT
from tests.support.keys import REAL_LOOKING_KEYS
from tests.support.schema import load_i18n

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

CJK = re.compile(r"[\u4e00-\u9fff]")
DEFAULT_MODEL = "google/gemini-2.5-flash-image"
OTHER_MODEL = "google/gemini-3-pro-image-preview"
# AstrBot's tool-call timeout on this server (its default is 120 s): short enough that a
# generation can outlast it in a test (the tool answers 2 s before it), long enough for the
# other tests' pictures to come with the tool's answer.
TOOL_TIMEOUT = 4


@dataclass
class E2E:
    server: AstrBotServer
    llm: FakeChatLLM
    openrouter: FakeOpenRouter


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def e2e_module(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[E2E]:
    llm = FakeChatLLM()
    openrouter = FakeOpenRouter()
    await llm.start()
    await openrouter.start()
    server = AstrBotServer(
        tmp_path_factory.mktemp("astrbot-e2e"),
        llm_base_url=llm.base_url,
        plugin_config={
            "openrouter_api_keys": [REAL_LOOKING_KEYS[0]],
            "custom_api_base": openrouter.base_url,
            "model_name": DEFAULT_MODEL,
        },
        config=astrbot_compat.tool_timeout_config(TOOL_TIMEOUT),
    )
    try:
        await server.start()  # on failure its message carries the server log
        yield E2E(server, llm, openrouter)
    finally:
        await server.stop()
        await llm.stop()
        await openrouter.stop()


@pytest.fixture
def e2e(e2e_module: E2E, request: pytest.FixtureRequest) -> Iterator[E2E]:
    """The module's server with fresh request records; prints the server's log on failure."""
    e2e_module.llm.reset()
    e2e_module.openrouter.reset()
    offset = e2e_module.server.log_size()
    failed_before = request.session.testsfailed
    yield e2e_module
    # The call phase is reported before teardown runs; what is printed here is shown with
    # the failure ("Captured stdout teardown").
    if request.session.testsfailed > failed_before:
        print(e2e_module.server.log_since(offset))


def answer_images(events: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Files of the `image` events and ids of the image attachments saved for the answer."""
    files = [e["data"] for e in events if e.get("type") == "image"]
    ids = [
        str(e["data"]["id"])
        for e in events
        if e.get("type") == "attachment_saved" and e["data"].get("type") == "image"
    ]
    return files, ids


async def received_image(e2e: E2E, events: list[dict[str, Any]]) -> bytes:
    files, ids = answer_images(events)
    assert len(files) == 1 and files[0].startswith("[IMAGE]"), events
    if not astrbot_compat.webchat_streams_attachment_ids():  # 4.14.6
        return await e2e.server.chat_file(files[0].removeprefix("[IMAGE]"))
    assert len(ids) == 1, events
    return await e2e.server.attachment(ids[0])


async def test_webchat_message_draws_through_the_tool(e2e: E2E):
    events = await e2e.server.chat("画一只戴着宇航头盔的橘猫")

    # The chat model called our tool with the user's request.
    assert e2e.llm.tool_calls == [
        {"image_description": "画一只戴着宇航头盔的橘猫", "use_reference_images": False}
    ]
    # The plugin asked OpenRouter once, for that picture.
    [upstream] = e2e.openrouter.chat_requests()
    assert upstream.prompt == "画一只戴着宇航头盔的橘猫"
    assert upstream.body["model"] == DEFAULT_MODEL
    assert upstream.key == REAL_LOOKING_KEYS[0]

    # The user received exactly the image the fake OpenRouter drew for that request.
    image = await received_image(e2e, events)
    assert png_prompt(image) == upstream.prompt

    # The model was told the image was sent, and its answer reached the user.
    [tool_result] = e2e.llm.tool_results()
    assert "已生成 1 张图片" in tool_result
    completes = [e["data"] for e in events if e.get("type") == "complete"]
    assert completes == [AFTER_TOOL_TEXT]
    assert REAL_LOOKING_KEYS[0] not in json.dumps(events, ensure_ascii=False)


async def test_config_change_through_dashboard_takes_effect_after_hot_reload(e2e: E2E):
    server = e2e.server
    original = (await server.plugin_config_view())["config"]
    assert original["model_name"] == DEFAULT_MODEL
    terminations_before = count_plugin_terminations(server.log_text(), PLUGIN_DIR_NAME)
    try:
        await server.update_plugin_config({**original, "model_name": OTHER_MODEL})

        # Saved where AstrBot keeps it, served back to the dashboard, and the plugin reloaded.
        saved = json.loads(server.plugin_config_path.read_text(encoding="utf-8-sig"))
        assert saved["model_name"] == OTHER_MODEL
        assert (await server.plugin_config_view())["config"]["model_name"] == OTHER_MODEL
        terminations = count_plugin_terminations(server.log_text(), PLUGIN_DIR_NAME)
        assert terminations == terminations_before + 1

        events = await server.chat("画一座日出时的雪山")
        [upstream] = e2e.openrouter.chat_requests()
        assert upstream.body["model"] == OTHER_MODEL
        assert png_prompt(await received_image(e2e, events)) == upstream.prompt
    finally:
        await server.update_plugin_config(original)


async def test_dashboard_lists_the_plugin_and_its_chinese_config_schema(e2e: E2E):
    plugins = await e2e.server.api("GET", "/api/plugin/get")
    [ours] = [p for p in plugins if p["name"] == PLUGIN_DIR_NAME]
    assert ours["activated"] is True
    assert ours["display_name"] == "Gemini 2.5 Image OpenRouter"

    view = await e2e.server.plugin_config_view()
    items = view["metadata"][PLUGIN_DIR_NAME]["items"]
    schema = json.loads((REPO_ROOT / "_conf_schema.json").read_text(encoding="utf-8"))
    assert set(items) == set(schema)
    for key, spec in schema.items():
        assert items[key]["type"] == spec["type"], key
        assert items[key]["description"] == spec["description"], key
        assert CJK.search(items[key]["description"]), key
        if "hint" in spec:
            assert CJK.search(items[key]["hint"]), key
    # The values the form is filled with: this server's settings, editable there.
    config = view["config"]
    assert config["custom_api_base"] == e2e.openrouter.base_url
    assert config["openrouter_api_keys"] == [REAL_LOOKING_KEYS[0]]
    assert config["nap_server_port"] == schema["nap_server_port"]["default"]
    # The panel's English texts reach the web UI where AstrBot reads plugin i18n (4.28+).
    if astrbot_compat.loads_plugin_i18n():
        assert ours["i18n"] == {"en-US": load_i18n("en-US")}
    else:
        assert not ours.get("i18n")


@pytest.mark.realtime
@pytest.mark.skipif(
    not astrbot_compat.webchat_keeps_later_messages(),
    reason="AstrBot 4.14's WebChat drops a message sent after the answer's stream closed",
)
async def test_webchat_gets_the_picture_when_the_generation_outlasts_the_tool_timeout(e2e: E2E):
    """Real time, short: a 6 s generation under AstrBot's 4 s tool-call timeout: the tool
    tells the model the picture will follow, the model answers, and the picture reaches the
    WebChat session later (stored in its history, where the web UI shows it)."""
    e2e.openrouter.default = lambda r: Reply(
        json_body=completion(images=[data_url(make_png(r.prompt))]),
        delay=TOOL_TIMEOUT + 2,
        keepalive=1,
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    session = await e2e.server.new_session()
    events = await e2e.server.chat("画一只慢慢来的猫", session)
    answered = loop.time() - started

    [tool_result] = e2e.llm.tool_results()
    assert "还在生成中" in tool_result and "不需要再次调用" in tool_result
    assert [e["data"] for e in events if e.get("type") == "complete"] == [AFTER_TOOL_TEXT]
    assert answer_images(events) == ([], [])  # not yet: the model answered first
    image, arrived = await later_image(e2e, session, started, limit=30)
    [upstream] = e2e.openrouter.chat_requests()
    assert upstream.streamed
    assert png_prompt(image) == upstream.prompt == "画一只慢慢来的猫"
    print(
        f"\nFIGURES e2e WebChat, {TOOL_TIMEOUT} s tool timeout, {TOOL_TIMEOUT + 2} s generation: "
        f"answer streamed by {answered:.1f} s, picture in the session at "
        f"{arrived - started:.1f} s, requests seen by the service: 1"
    )


async def later_image(e2e: E2E, session: str, started: float, limit: float) -> tuple[bytes, float]:
    """The first picture the bot put into the session's history, and when it was seen there."""
    loop = asyncio.get_running_loop()
    while loop.time() - started < limit:
        for record in await e2e.server.session_history(session):
            for part in history_parts(record):
                if part.get("type") == "image" and part.get("attachment_id"):
                    return await e2e.server.attachment(str(part["attachment_id"])), loop.time()
        await asyncio.sleep(0.25)
    raise AssertionError(f"no picture in the session after {limit:.0f} s")


def history_parts(record: dict[str, Any]) -> list[dict[str, Any]]:
    content = record.get("content") or {}
    if isinstance(content, str):
        content = json.loads(content)
    if content.get("type") != "bot":
        return []
    parts = content.get("message") or []
    return [p for p in parts if isinstance(p, dict)]
