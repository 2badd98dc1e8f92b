"""Aspect ratio and image size: a configured default, a tool argument that overrides it,
checked values. (Which model takes which: tests/openrouter/test_capabilities.py.)"""

from __future__ import annotations

import pytest
from astrbot.core.provider.register import llm_tools

from tests.support.harness import TOOL_NAME, make_event
from tests.support.schema import field, load_schema
from utils.chat.texts.failures import user_message
from utils.chat.texts.language import ZH
from utils.core.errors import InvalidArgumentError
from utils.core.image_options import (
    ASPECT_RATIOS,
    IMAGE_SIZES,
    normalize_aspect_ratio,
    normalize_image_size,
    resolve_image_size,
)

DOCUMENTED = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]
# Gemini 3.1 Flash Image's tall and wide strips.
EXTENDED = ["1:4", "4:1", "1:8", "8:1"]


def _sent_ratio(fake) -> str | None:
    [request] = fake.chat_requests()
    return (request.body.get("image_config") or {}).get("aspect_ratio")


async def test_the_tool_offers_an_optional_aspect_ratio_and_size(astrbot):
    [schema] = [
        s["function"]
        for s in llm_tools.get_full_tool_set().openai_schema()
        if s["function"]["name"] == TOOL_NAME
    ]
    prop = schema["parameters"]["properties"]["aspect_ratio"]
    assert prop["type"] == "string"
    assert all(ratio in prop["description"] for ratio in DOCUMENTED + EXTENDED)
    assert "aspect_ratio" not in schema["parameters"].get("required", [])
    size = schema["parameters"]["properties"]["image_size"]
    assert size["type"] == "string"
    assert all(s in size["description"] for s in IMAGE_SIZES)
    assert "image_size" not in schema["parameters"].get("required", [])


async def test_the_config_default_is_empty_and_offers_every_ratio(astrbot):
    schema = load_schema(astrbot.plugin_dir / "_conf_schema.json")
    ratio = field(schema, "aspect_ratio").spec
    assert ratio["default"] == ""
    assert ratio["options"] == ["", *DOCUMENTED, *EXTENDED]
    # The empty choice is named in the drop-down; every ratio is shown as itself.
    assert ratio["labels"] == ["由模型决定", *DOCUMENTED, *EXTENDED]
    assert list(ASPECT_RATIOS) == DOCUMENTED + EXTENDED
    size = field(schema, "image_size").spec
    assert size["default"] == ""
    assert size["options"] == ["", "1K", "2K", "4K"]
    assert size["labels"] == ["由模型决定", "1K", "2K", "4K"]


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


@pytest.mark.parametrize("argument", ["7:3", "wide", "16:10", "1:1:1", "1:16"])
async def test_an_invalid_ratio_is_explained_without_a_request(
    astrbot, fake, plugin_config, argument
):
    texts = await astrbot.run_tool(make_event(), image_description="a cat", aspect_ratio=argument)
    assert fake.chat_requests() == []
    assert "不支持的宽高比" in texts[0]
    assert all(ratio in texts[0] for ratio in DOCUMENTED + EXTENDED)


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
        ("1 x 8", "1:8"),
        ("4：1", "4:1"),
    ],
)
def test_normalize(value, expected):
    assert normalize_aspect_ratio(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("4K", "4K"),
        ("4k", "4K"),
        (" 2k ", "2K"),
        ("1 K", "1K"),
        ("2048", "2K"),
        ("4096px", "4K"),
        ("", ""),
        (None, ""),
        ("默认", ""),
        ("8K", None),
        ("0.5K", None),
        ("3K", None),
        ("1080p", None),
        ("huge", None),
    ],
)
def test_normalize_image_size(value, expected):
    assert normalize_image_size(value) == expected


def test_an_invalid_size_is_refused_with_its_data_and_one_chinese_sentence():
    with pytest.raises(InvalidArgumentError) as caught:
        resolve_image_size("8K", "")
    error = caught.value
    assert (error.argument, error.value, error.allowed) == ("image_size", "8K", IMAGE_SIZES)
    text = user_message(ZH, error)
    assert "不支持的图片尺寸“8K”" in text and all(s in text for s in IMAGE_SIZES)


@pytest.mark.parametrize(("argument", "default", "chosen"), [("4k", "2K", "4K"), ("", "2K", "2K")])
def test_the_size_argument_overrides_the_default(argument, default, chosen):
    assert resolve_image_size(argument, default) == chosen
    assert resolve_image_size("", "") is None
