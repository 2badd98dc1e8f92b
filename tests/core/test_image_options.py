"""Aspect ratio: a configured default, a tool argument that overrides it, checked values."""

from __future__ import annotations

import pytest
from astrbot.core.provider.register import llm_tools

from tests.support.harness import TOOL_NAME, make_event
from tests.support.schema import field, load_schema
from utils.core.image_options import ASPECT_RATIOS, normalize_aspect_ratio

DOCUMENTED = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]


def _sent_ratio(fake) -> str | None:
    [request] = fake.chat_requests()
    return (request.body.get("image_config") or {}).get("aspect_ratio")


async def test_the_tool_offers_an_optional_aspect_ratio(astrbot):
    [schema] = [
        s["function"]
        for s in llm_tools.get_full_tool_set().openai_schema()
        if s["function"]["name"] == TOOL_NAME
    ]
    prop = schema["parameters"]["properties"]["aspect_ratio"]
    assert prop["type"] == "string"
    assert "16:9" in prop["description"] and "21:9" in prop["description"]
    assert "aspect_ratio" not in schema["parameters"].get("required", [])


async def test_the_config_default_is_empty_and_offers_every_ratio(astrbot):
    spec = field(load_schema(astrbot.plugin_dir / "_conf_schema.json"), "aspect_ratio").spec
    assert spec["default"] == ""
    assert spec["options"] == ["", *DOCUMENTED]
    # The empty choice is named in the drop-down; every ratio is shown as itself.
    assert spec["labels"] == ["由模型决定", *DOCUMENTED]
    assert list(ASPECT_RATIOS) == DOCUMENTED


async def test_no_ratio_leaves_it_to_the_model(astrbot, fake, plugin_config):
    await astrbot.run_tool(make_event(), image_description="a cat")
    assert "image_config" not in fake.chat_requests()[0].body


async def test_the_configured_ratio_is_sent(astrbot, fake, plugin_config):
    plugin_config["aspect_ratio"] = "16:9"
    await astrbot.run_tool(make_event(), image_description="a wide landscape")
    assert _sent_ratio(fake) == "16:9"


@pytest.mark.parametrize(
    ("argument", "sent"),
    [("9:16", "9:16"), ("3：4", "3:4"), (" 21x9 ", "21:9"), ("", "16:9"), (None, "16:9")],
)
async def test_the_tool_argument_overrides_the_config(astrbot, fake, plugin_config, argument, sent):
    plugin_config["aspect_ratio"] = "16:9"
    await astrbot.run_tool(make_event(), image_description="a cat", aspect_ratio=argument)
    assert _sent_ratio(fake) == sent


@pytest.mark.parametrize("argument", ["7:3", "wide", "16:10", "1:1:1"])
async def test_an_invalid_ratio_is_explained_without_a_request(
    astrbot, fake, plugin_config, argument
):
    texts = await astrbot.run_tool(make_event(), image_description="a cat", aspect_ratio=argument)
    assert fake.chat_requests() == []
    assert "不支持的宽高比" in texts[0]
    assert all(ratio in texts[0] for ratio in DOCUMENTED)


async def test_a_hand_edited_invalid_config_value_falls_back_to_the_model_default(
    astrbot, fake, plugin_config
):
    plugin_config["aspect_ratio"] = "5:3"
    await astrbot.run_tool(make_event(), image_description="a cat")
    assert "image_config" not in fake.chat_requests()[0].body


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("16:9", "16:9"),
        ("16 : 9", "16:9"),
        ("16*9", "16:9"),
        ("auto", ""),
        ("默认", ""),
        ("2:1", None),
    ],
)
def test_normalize(value, expected):
    assert normalize_aspect_ratio(value) == expected
