"""Chat commands, dispatched by AstrBot's own pipeline (wake prefix, command and permission
filters, star handlers), and the progress message they share with the tool."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import shutil
from pathlib import Path

import pytest
from astrbot.core import astrbot_config
from astrbot.core.message.components import Image, Plain, Reply
from PIL import Image as PILImage

from tests.conftest import REAL_LOOKING_KEYS
from tests.fakes.openrouter import Reply as FakeReply
from tests.fakes.openrouter import png_prompt
from tests.support.harness import image_path, make_event
from tests.support.keys import OUT_OF_CREDITS
from utils.chat.commands import command_argument, own_avatar_option
from utils.chat.jobs import FIGURE_TEMPLATE
from utils.chat.texts import command_names

PROGRESS = "🎨 收到，正在"


@pytest.fixture
def config_file(astrbot) -> Path:
    return astrbot.root / "data" / "config" / f"{astrbot.plugin_dir.name}_config.json"


def _on_disk(config_file: Path) -> dict:
    return json.loads(config_file.read_text(encoding="utf-8-sig"))


# --- /画图 ------------------------------------------------------------------------------------------


async def test_draw_command_generates_and_sends(astrbot, fake, plugin_config):
    event = await astrbot.dispatch(make_event("/画图 a red fox\nin the snow, watercolor"))
    [request] = fake.chat_requests()
    assert request.prompt == "a red fox\nin the snow, watercolor"  # spaces and lines kept
    assert request.image_parts == []
    [image] = event.sent_images()
    assert png_prompt(image_path(image).read_bytes()) == "a red fox\nin the snow, watercolor"
    assert event.is_stopped()  # handled: no LLM turn after the command


async def test_draw_without_description_shows_usage(astrbot, fake, plugin_config):
    event = await astrbot.dispatch(make_event("/画图"))
    assert event.sent_texts() == ["用法：/画图 <图片描述>，例如 /画图 一只在月球上看书的猫"]
    assert fake.requests == []


async def test_message_without_wake_prefix_is_not_a_command(astrbot, fake, plugin_config):
    event = await astrbot.dispatch(make_event("画图 a cat"))
    assert event.sent == []
    assert fake.requests == []


async def test_upstream_failure_is_told_in_chinese(astrbot, fake, plugin_config):
    fake.enqueue(FakeReply.error(402, "Insufficient credits"))
    event = await astrbot.dispatch(make_event("/画图 a cat"))
    [text] = event.sent_texts()
    assert OUT_OF_CREDITS.fullmatch(text), text
    assert event.sent_images() == []


# --- /改图 and /手办化 -------------------------------------------------------------------------------


def _sent_reference(request) -> tuple[tuple[int, int], tuple[int, ...]]:
    """Size and first pixel of the one reference image sent (re-encoded as JPEG: opaque)."""
    [url] = request.image_parts
    header, _, data = url.partition(",")
    assert header == "data:image/jpeg;base64"
    with PILImage.open(io.BytesIO(base64.b64decode(data))) as image:
        return image.size, image.convert("RGB").getpixel((0, 0))


def _picture_of(path: Path) -> tuple[tuple[int, int], tuple[int, ...]]:
    with PILImage.open(path) as image:
        return image.size, image.convert("RGB").getpixel((0, 0))


def _close(sent, original) -> bool:
    (size, pixel), (size0, pixel0) = sent, original
    return size == size0 and all(abs(a - b) <= 4 for a, b in zip(pixel, pixel0, strict=True))


async def test_edit_uses_the_image_in_the_message(astrbot, fake, plugin_config, picture):
    event = make_event("/改图 make it wear a hat", [Image.fromFileSystem(str(picture))])
    await astrbot.dispatch(event)
    [request] = fake.chat_requests()
    assert request.prompt == "make it wear a hat"
    assert _close(_sent_reference(request), _picture_of(picture))
    assert len(event.sent_images()) == 1


async def test_edit_uses_the_image_of_the_quoted_message(astrbot, fake, plugin_config, picture):
    quoted = Reply(id="42", chain=[Image.fromFileSystem(str(picture))], sender_id="555")
    await astrbot.dispatch(make_event("/改图 turn it into pixel art", [quoted]))
    [request] = fake.chat_requests()
    assert _close(_sent_reference(request), _picture_of(picture))


async def test_edit_without_an_image_says_so(astrbot, fake, plugin_config):
    plugin_config["progress_message"] = True
    quoted = Reply(id="42", chain=[Plain("just text")], sender_id="555")
    event = await astrbot.dispatch(make_event("/改图 make it blue", [quoted]))
    [text] = event.sent_texts()
    assert "没有收到图片" in text and "回复（引用）" in text
    assert fake.generation_requests() == []  # the model lists may be looked at


async def test_edit_with_an_unreadable_image_says_so(astrbot, fake, plugin_config, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"<html>not a picture</html>")
    event = await astrbot.dispatch(
        make_event("/改图 make it blue", [Image.fromFileSystem(str(broken))])
    )
    [text] = event.sent_texts()
    assert "参考图都无法读取" in text
    assert fake.generation_requests() == []  # the model lists may be looked at


async def test_figure_preset_needs_no_words(astrbot, fake, plugin_config, picture):
    event = await astrbot.dispatch(make_event("/手办化", [Image.fromFileSystem(str(picture))]))
    [request] = fake.chat_requests()
    assert request.prompt == FIGURE_TEMPLATE.format(details="")
    assert "collectible figure" in request.prompt
    assert _close(_sent_reference(request), _picture_of(picture))
    assert len(event.sent_images()) == 1


async def test_figure_extra_words_are_translated_and_appended(
    astrbot, fake, fake_translate, plugin_config, picture
):
    plugin_config["translate_prompt"] = True
    await astrbot.dispatch(make_event("/手办化 拿着一只猫", [Image.fromFileSystem(str(picture))]))
    [request] = fake.chat_requests()
    assert request.prompt.startswith("Use the main character")
    assert request.prompt.endswith("Additional details from the user: holding a cat")
    assert [r.query for r in fake_translate.requests] == ["拿着一只猫"]  # not the template


async def test_figure_without_an_image_says_so(astrbot, fake, plugin_config):
    event = await astrbot.dispatch(make_event("/手办化 穿着盔甲"))
    assert "没有收到图片" in event.sent_texts()[0]
    assert fake.generation_requests() == []  # the model lists may be looked at


async def test_help_lists_every_command(astrbot, fake, plugin_config):
    event = await astrbot.dispatch(make_event("/画图帮助"))
    [text] = event.sent_texts()
    for command in (
        "/画图 ",
        "/改图 ",
        "/手办化",
        "/画图帮助",
        "/画图模型",
        "/画图接口",
        "/画图配置",
    ):
        assert command in text
    assert fake.requests == []


# --- progress message -------------------------------------------------------------------------------


async def test_progress_message_once_before_the_image(astrbot, fake, plugin_config):
    plugin_config["progress_message"] = True
    event = await astrbot.dispatch(make_event("/画图 a cat"))
    assert event.sent_texts() == ["🎨 收到，正在生成图片，请稍候…"]
    assert [type(c).__name__ for chain in event.sent for c in chain.chain] == ["Plain", "Image"]


async def test_progress_message_for_the_tool_and_for_edits(astrbot, fake, plugin_config, picture):
    plugin_config["progress_message"] = True
    event = make_event()
    await astrbot.run_tool(event, image_description="a cat")
    assert event.sent_texts() == ["🎨 收到，正在生成图片，请稍候…"]
    edit = await astrbot.dispatch(
        make_event("/改图 add a hat", [Image.fromFileSystem(str(picture))])
    )
    assert edit.sent_texts() == ["🎨 收到，正在修改图片，请稍候…"]


async def test_progress_message_can_be_switched_off(astrbot, fake, plugin_config):
    event = await astrbot.dispatch(make_event("/画图 a cat"))
    assert event.sent_texts() == []
    assert len(event.sent_images()) == 1


@pytest.mark.parametrize("keys", [[], ["YOUR_API_KEY"]])
async def test_no_progress_message_on_a_fast_failure(astrbot, fake, plugin_config, keys):
    plugin_config["progress_message"] = True
    plugin_config["openrouter_api_keys"] = keys
    event = await astrbot.dispatch(make_event("/画图 a cat"))
    [text] = event.sent_texts()
    assert "密钥" in text and PROGRESS not in text
    tool_event = make_event()
    texts = await astrbot.run_tool(tool_event)  # no description at all
    assert texts == ["请告诉我要画什么：图片描述不能为空。"]
    assert tool_event.sent == []


async def test_progress_message_then_error_when_upstream_fails(astrbot, fake, plugin_config):
    plugin_config["progress_message"] = True
    fake.enqueue(FakeReply.error(402, "Insufficient credits"))
    event = await astrbot.dispatch(make_event("/画图 a cat"))
    progress, failure = event.sent_texts()
    assert progress == "🎨 收到，正在生成图片，请稍候…"
    assert OUT_OF_CREDITS.fullmatch(failure), failure


# --- admin commands ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["/画图模型 openai/gpt-4o", "/画图接口 https://evil.example/api", "/画图配置"]
)
async def test_admin_commands_refuse_members(astrbot, fake, plugin_config, config_file, text):
    before = config_file.read_bytes()
    event = await astrbot.dispatch(make_event(text, sender_id="10001"))
    [reply] = event.sent_texts()
    assert "是管理员指令，只有机器人管理员可以使用（你的 ID：10001）" in reply
    assert plugin_config["model_name"] == "google/gemini-2.5-flash-image"
    assert plugin_config["custom_api_base"] == fake.base_url
    assert config_file.read_bytes() == before
    assert REAL_LOOKING_KEYS[0][-4:] not in reply


async def test_admin_switches_the_model_and_it_is_saved(
    astrbot, fake, plugin_config, admin, config_file
):
    event = await astrbot.dispatch(
        make_event("/画图模型 google/gemini-3-pro-image-preview", sender_id=admin)
    )
    assert event.sent_texts() == [
        "已将图像模型切换为 google/gemini-3-pro-image-preview\n"
        "已保存到插件配置（网页面板中同步可见）。"
    ]
    assert plugin_config["model_name"] == "google/gemini-3-pro-image-preview"
    assert _on_disk(config_file)["model_name"] == "google/gemini-3-pro-image-preview"
    # The next request, from anyone, uses it.
    await astrbot.dispatch(make_event("/画图 a cat", sender_id="10001"))
    assert [r.body["model"] for r in fake.chat_requests()] == ["google/gemini-3-pro-image-preview"]


async def test_admin_model_argument_is_checked(astrbot, fake, plugin_config, admin, config_file):
    before = config_file.read_bytes()
    event = await astrbot.dispatch(make_event("/画图模型 双子座 模型", sender_id=admin))
    assert "模型 ID 格式不对" in event.sent_texts()[0]
    assert plugin_config["model_name"] == "google/gemini-2.5-flash-image"
    assert config_file.read_bytes() == before
    shown = await astrbot.dispatch(make_event("/画图模型", sender_id=admin))
    assert "当前图像模型：google/gemini-2.5-flash-image" in shown.sent_texts()[0]


async def test_admin_switches_the_api_base_and_back(
    astrbot, fake, plugin_config, admin, config_file
):
    new_base = fake.base_url + "/v1/"
    event = await astrbot.dispatch(make_event(f"/画图接口 {new_base}", sender_id=admin))
    assert event.sent_texts()[0].startswith(f"已将 API 地址切换为：{fake.base_url}\n已保存")
    assert _on_disk(config_file)["custom_api_base"] == fake.base_url + "/v1"
    await astrbot.dispatch(make_event("/画图 a cat"))
    assert [r.path for r in fake.chat_requests()] == ["/api/v1/chat/completions"]

    bad = await astrbot.dispatch(make_event("/画图接口 ftp://files.example", sender_id=admin))
    assert "API 地址格式不对" in bad.sent_texts()[0]
    assert _on_disk(config_file)["custom_api_base"] == fake.base_url + "/v1"

    reset = await astrbot.dispatch(make_event("/画图接口 默认", sender_id=admin))
    assert "切换为 OpenRouter 官方地址：https://openrouter.ai/api\n" in reset.sent_texts()[0]
    assert _on_disk(config_file)["custom_api_base"] == ""
    assert plugin_config["custom_api_base"] == ""


async def test_admin_sees_settings_with_keys_masked(astrbot, fake, plugin_config, admin):
    plugin_config["openrouter_api_keys"] = list(REAL_LOOKING_KEYS[:2])
    plugin_config["translate_proxy"] = "http://user:hunter2@127.0.0.1:7890"
    plugin_config["group_denylist"] = ["555"]
    event = await astrbot.dispatch(make_event("/画图配置", sender_id=admin))
    [text] = event.sent_texts()
    assert "模型：google/gemini-2.5-flash-image" in text
    assert f"API 地址：{fake.base_url}" in text
    assert "API 密钥（2 个）：sk-or-…a1a1、sk-or-…b2b2" in text
    assert "群黑名单：555" in text
    for key in REAL_LOOKING_KEYS:
        assert key not in text and key[9:25] not in text
    assert "hunter2" not in text


# A chat client's link runs to the next space: anything written right after an address
# (full-width brackets, commas, Chinese) would become part of the link.
_LINK = re.compile(r"https?://\S+")
_NOT_IN_A_URL = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


async def test_links_in_admin_replies_end_where_the_address_ends(
    astrbot, fake, plugin_config, admin, config_file
):
    plugin_config["translate_proxy"] = "http://user:hunter2@127.0.0.1:7890"
    replies = []
    for text in (
        f"/画图接口 {fake.base_url}",
        "/画图接口",
        "/画图配置",
        "/画图接口 默认",
        "/画图配置",
    ):
        replies += (await astrbot.dispatch(make_event(text, sender_id=admin))).sent_texts()
    links = [link for reply in replies for link in _LINK.findall(reply)]
    assert fake.base_url in links and "https://openrouter.ai/api" in links
    assert "http://user:***@127.0.0.1:7890" in links
    for link in links:
        assert not _NOT_IN_A_URL.search(link), link


async def test_admin_is_told_when_saving_fails(astrbot, fake, plugin_config, admin, config_file):
    saved = config_file.read_bytes()
    config_file.unlink()
    config_file.mkdir()  # the atomic replace of the config file now fails
    (config_file / "keep").write_text("x")
    try:
        event = await astrbot.dispatch(make_event("/画图模型 google/gemini-x", sender_id=admin))
    finally:
        shutil.rmtree(config_file)
        config_file.write_bytes(saved)
    assert event.sent_texts() == [
        "已将图像模型切换为 google/gemini-x\n"
        "设置已立即生效，但保存到配置文件失败，插件重载后会恢复原设置，请查看日志。"
    ]
    assert plugin_config["model_name"] == "google/gemini-x"


async def test_help_shows_the_configured_wake_prefix(astrbot, fake, plugin_config):
    prefixes = astrbot_config["wake_prefix"]
    astrbot_config["wake_prefix"] = ["#"]
    try:
        event = await astrbot.dispatch(make_event("#画图帮助"))
    finally:
        astrbot_config["wake_prefix"] = prefixes
    [text] = event.sent_texts()
    assert "#画图 <描述>" in text and "/画图" not in text


async def test_settings_show_the_api_base_without_credentials_and_warn_of_cleartext(
    astrbot, fake, plugin_config, admin, config_file, plugin_log
):
    plugin_config["custom_api_base"] = "http://gw-user:s3cret@gateway.example:8080/api?token=t0k#x"
    [text] = (await astrbot.dispatch(make_event("/画图配置", sender_id=admin))).sent_texts()
    assert "API 地址：http://gateway.example:8080/api\n" in text
    assert not any(secret in text for secret in ("gw-user", "s3cret", "t0k"))
    assert "明文 http:// 且不在本机" in text
    plugin_config["reply_lang"] = "en"
    [english] = (await astrbot.dispatch(make_event("/draw_config", sender_id=admin))).sent_texts()
    assert "API address: http://gateway.example:8080/api\n" in english
    assert "plain http:// to another host" in english and "s3cret" not in english
    plugin_config["reply_lang"] = "zh"

    [reply] = (
        await astrbot.dispatch(make_event("/画图接口 http://10.0.0.7/api", sender_id=admin))
    ).sent_texts()
    assert "切换为：http://10.0.0.7/api\n⚠️" in reply
    assert any("clear text" in m for m in _warnings(plugin_log))
    # A loopback gateway (like the fake here) is no reason to worry.
    [local] = (
        await astrbot.dispatch(make_event(f"/画图接口 {fake.base_url}", sender_id=admin))
    ).sent_texts()
    assert "明文" not in local


async def test_a_cleartext_api_base_is_logged_at_load(astrbot, fake, plugin_config, plugin_log):
    config = {**plugin_config, "custom_api_base": "http://gateway.example/api"}
    plugin = type(astrbot.plugin)(astrbot.context, config)
    await plugin.initialize()
    await plugin.terminate()
    assert any("http://gateway.example/api is plain http://" in m for m in _warnings(plugin_log))


def _warnings(records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if r.levelno >= logging.WARNING]


# --- names and arguments -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "argument"),
    [
        ("画图 a cat", "a cat"),
        ("/draw a cat\non the moon", "a cat\non the moon"),
        ("draw", ""),
        ("drawing a cat", ""),  # another word, not the command
    ],
)
def test_the_argument_follows_whichever_name_was_used(message, argument):
    assert command_argument(message, command_names.DRAW) == argument


def test_the_keys_command_keeps_its_old_name():
    assert command_argument("gemini_keys", command_names.KEYS) == ""
    assert command_names.KEYS.aliases == {"draw_keys", "gemini_keys"}
    assert [c.en for c in command_names.ALL] == [
        "draw",
        "edit",
        "figure",
        "draw_help",
        "draw_model",
        "draw_api",
        "draw_config",
        "draw_keys",
        "draw_stats",
    ]


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("我", ("", True)),
        ("我的头像 画成油画", ("画成油画", True)),
        ("me", ("", True)),
        ("Me", ("", True)),
        ("my avatar as an oil painting", ("as an oil painting", True)),
        ("my avatar, as a knight", ("as a knight", True)),
        ("me a cat", ("me a cat", False)),  # "draw me a cat" asks for a cat
        ("my avatars of the week", ("my avatars of the week", False)),
        ("a cat", ("a cat", False)),
    ],
)
def test_asking_for_ones_own_avatar(argument, expected):
    assert own_avatar_option(argument) == expected
