"""The plugin inside a real AstrBot: registration, the tool schema, and the generation path."""

from __future__ import annotations

from pathlib import Path

import pytest
from astrbot.core.provider.register import llm_tools

from tests.fakes.openrouter import Reply, png_prompt
from tests.support.harness import TOOL_NAME, make_event
from tests.support.keys import OUT_OF_CREDITS, REAL_LOOKING_KEYS


def _schema() -> dict:
    toolset = llm_tools.get_full_tool_set()
    schemas = [s for s in toolset.openai_schema() if s["function"]["name"] == TOOL_NAME]
    assert len(schemas) == 1
    return schemas[0]["function"]


async def test_plugin_is_registered_with_its_metadata(astrbot):
    from astrbot.core.star.star import star_registry

    meta = next(m for m in star_registry if m.star_cls is astrbot.plugin)
    assert meta.name == "astrbot_plugin_gemini25_image_openrouter"
    assert meta.display_name == "Gemini 2.5 Image OpenRouter"
    assert meta.activated


async def test_tool_schema_as_the_model_sees_it(astrbot):
    function = _schema()
    props = function["parameters"]["properties"]
    assert props["image_description"]["type"] == "string"
    assert props["use_reference_images"]["type"] == "boolean"
    assert "图片" in function["description"]
    assert props["image_description"]["description"]
    # The model learns where references come from, so it can leave them out on purpose.
    assert "@" in props["use_reference_images"]["description"]
    assert "合并转发" in props["use_reference_images"]["description"]
    assert props["use_sender_avatar"]["type"] == "boolean"
    assert "我的头像" in props["use_sender_avatar"]["description"]
    # Going on from the last picture: when to say so, and when not.
    assert props["continue_last_picture"]["type"] == "boolean"
    continuing = props["continue_last_picture"]["description"]
    assert all(w in continuing for w in ("改刚才那张", "把它改成", "再加", "新的", "不要填写"))
    assert "continue_last_picture" in function["description"]


async def test_config_file_created_with_defaults(astrbot):
    config_file = astrbot.root / "data" / "config" / f"{astrbot.plugin_dir.name}_config.json"
    raw = config_file.read_text(encoding="utf-8-sig")
    assert '"model_name": "google/gemini-2.5-flash-image"' in raw
    assert '"nap_server_port": 3658' in raw


async def test_generates_and_sends_the_image_of_its_own_request(astrbot, fake, plugin_config):
    event = make_event("画一只在月球上的猫")
    texts = await astrbot.run_tool(event, image_description="a cat on the moon")

    assert len(fake.chat_requests()) == 1
    request = fake.chat_requests()[0]
    assert request.body["modalities"] == ["image", "text"]
    assert request.body["model"] == "google/gemini-2.5-flash-image"
    assert request.prompt == "a cat on the moon"
    assert request.key == REAL_LOOKING_KEYS[0]
    assert request.headers["X-Title"] and request.headers["HTTP-Referer"].startswith("https://")

    images = event.sent_images()
    assert len(images) == 1
    path = Path(images[0].file.removeprefix("file:///"))
    if not path.is_absolute():
        path = Path("/" + str(path))
    assert path.parent == astrbot.plugin_dir / "images"
    assert path.suffix == ".png"
    assert png_prompt(path.read_bytes()) == "a cat on the moon"
    assert texts and "已生成 1 张图片" in texts[0]


@pytest.mark.parametrize(
    ("value", "expected_error"),
    [("true", False), ("false", False), ("maybe", False), (None, False)],
)
async def test_boolean_strings_and_extra_arguments_are_tolerated(
    astrbot, fake, plugin_config, value, expected_error
):
    event = make_event()
    args = {"image_description": "a dog", "unexpected_flag": 3}
    if value is not None:
        args["use_reference_images"] = value
    texts = await astrbot.run_tool(event, **args)
    assert len(event.sent_images()) == 1
    assert "已生成" in texts[0]


async def test_missing_description_gets_a_clear_answer(astrbot, fake, plugin_config):
    event = make_event()
    texts = await astrbot.run_tool(event)
    assert texts == ["请告诉我要画什么：图片描述不能为空。"]
    assert fake.chat_requests() == []
    assert event.sent == []


@pytest.mark.parametrize(
    "keys",
    [[], [""], ["sk-or-v1-xxxxxxxxxxxxxxxx"], ["YOUR_API_KEY"], ["在这里填写你的密钥"]],
)
async def test_placeholder_keys_answer_configure_without_http(astrbot, fake, plugin_config, keys):
    plugin_config["openrouter_api_keys"] = keys
    event = make_event()
    texts = await astrbot.run_tool(event, image_description="a cat")
    assert "配置" in texts[0] and "密钥" in texts[0]
    assert fake.requests == []


async def test_legacy_single_key_is_honoured(astrbot, fake, plugin_config):
    plugin_config["openrouter_api_keys"] = []
    plugin_config["openrouter_api_key"] = REAL_LOOKING_KEYS[1]
    event = make_event()
    await astrbot.run_tool(event, image_description="a cat")
    assert [r.key for r in fake.chat_requests()] == [REAL_LOOKING_KEYS[1]]
    assert len(event.sent_images()) == 1


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
async def test_api_base_with_or_without_v1(astrbot, fake, plugin_config, suffix):
    plugin_config["custom_api_base"] = fake.base_url + suffix
    event = make_event()
    await astrbot.run_tool(event, image_description="a cat")
    assert [r.path for r in fake.chat_requests()] == ["/api/v1/chat/completions"]


async def test_upstream_error_becomes_chinese_text_without_key(
    astrbot, fake, plugin_config, plugin_log
):
    fake.enqueue(Reply.error(402, "Insufficient credits"))
    event = make_event()
    texts = await astrbot.run_tool(event, image_description="a cat")
    [text] = texts
    assert OUT_OF_CREDITS.fullmatch(text), text
    assert event.sent == []
    log_text = "\n".join(r.getMessage() for r in plugin_log)
    assert "OutOfCreditsError" in log_text and "HTTP 402" in log_text
    assert REAL_LOOKING_KEYS[0] not in log_text
    assert not list((astrbot.plugin_dir / "images").glob("*.part"))
