"""Admin commands and who may run them, through AstrBot's own pipeline (its waking stage runs
the permission filters; utils/chat/permission.py says what AstrBot itself does)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from astrbot.core import astrbot_config
from astrbot.core.star import command_management

from tests.support.harness import make_event
from utils.chat.texts import command_names as cmd

CMD_API_BASE, CMD_KEYS, CMD_MODEL = cmd.API_BASE.zh, cmd.KEYS.zh, cmd.MODEL.zh
CMD_SETTINGS, CMD_STATS = cmd.SETTINGS.zh, cmd.STATS.zh
ADMIN_COMMANDS = {
    CMD_MODEL: "/画图模型 openai/gpt-4o",
    CMD_API_BASE: "/画图接口 https://evil.example/api",
    CMD_SETTINGS: "/画图配置",
    CMD_KEYS: "/画图密钥 重置",
    CMD_STATS: "/画图统计",
}


def refusal(command: str, sender: str = "10001") -> str:
    return f"/{command} 是管理员指令，只有机器人管理员可以使用（你的 ID：{sender}）。"


def english_refusal(command: str, sender: str = "10001") -> str:
    return f"/{command} is an admin command: only the bot's admins may use it (your ID: {sender})."


@pytest.mark.parametrize("command", list(ADMIN_COMMANDS))
async def test_a_member_hears_one_sentence_that_the_command_is_for_admins(
    astrbot, fake, plugin_config, plugin_log, command
):
    before = dict(plugin_config)
    event = await astrbot.dispatch(make_event(ADMIN_COMMANDS[command], sender_id="10001"))
    assert event.sent_texts() == [refusal(command)]
    assert event.is_stopped()  # no LLM turn on the command's text either
    assert dict(plugin_config) == before
    assert fake.requests == []  # not even the key quota of /画图统计
    assert any(
        f"10001 is not a bot admin: /{command} refused" in r.getMessage() for r in plugin_log
    )


async def test_the_old_alias_is_refused_too(astrbot, fake, plugin_config):
    event = await astrbot.dispatch(make_event("/gemini_keys", sender_id="10001"))
    assert event.sent_texts() == [refusal(CMD_KEYS)]


@pytest.mark.parametrize(
    "command", [cmd.MODEL, cmd.API_BASE, cmd.SETTINGS, cmd.KEYS, cmd.STATS], ids=lambda c: c.en
)
async def test_in_english_the_sentence_names_the_english_command(
    astrbot, fake, plugin_config, command
):
    plugin_config["reply_lang"] = "en"
    event = await astrbot.dispatch(make_event(f"/{command.en}", sender_id="10001"))
    assert event.sent_texts() == [english_refusal(command.en)]


async def test_an_admin_is_answered_as_before(astrbot, fake, plugin_config, admin):
    event = await astrbot.dispatch(make_event("/画图配置", sender_id=admin))
    [text] = event.sent_texts()
    assert text.startswith("当前画图插件设置：")


async def test_the_dashboard_lists_them_as_admin_commands(astrbot, plugin_config):
    """AstrBot's command list (the dashboard's 指令 page) reads the permission filter."""
    listed = {
        c["original_command"]: c["permission"]
        for c in await command_management.list_commands()
        if c["plugin"] == astrbot.plugin_dir.name
    }
    assert {name: listed[name] for name in ADMIN_COMMANDS} == dict.fromkeys(ADMIN_COMMANDS, "admin")
    assert listed["画图"] == "everyone"


@contextlib.contextmanager
def astrbot_setting(astrbot, section: str, key: str, value: object) -> Iterator[None]:
    """An AstrBot setting changed as the dashboard would, with the pipeline built afresh (its
    stages read their settings when built), and both put back afterwards."""
    settings = astrbot_config[section]
    saved = settings.get(key)
    settings[key] = value
    astrbot._scheduler = None
    try:
        yield
    finally:
        settings[key] = saved
        astrbot._scheduler = None


async def test_when_astrbot_is_set_not_to_answer_nobody_answers(
    astrbot, fake, plugin_config, plugin_log
):
    """AstrBot's "用户权限不足时是否回复" off: its silence stands (it logs the refusal)."""
    with astrbot_setting(astrbot, "platform_settings", "no_permission_reply", False):
        event = await astrbot.dispatch(make_event("/画图配置", sender_id="10001"))
    assert event.sent_texts() == []
    # AstrBot's own log of the refusal: English since 4.28, Chinese before.
    refusals = [
        m
        for m in (r.getMessage() for r in plugin_log)
        if ("lacks permission" in m or "权限不足" in m) and "10001" in m
    ]
    assert len(refusals) == 1 and astrbot.plugin.name in refusals[0]


async def test_a_permission_changed_in_the_dashboard_is_obeyed(astrbot, fake, plugin_config):
    update = getattr(command_management, "update_command_permission", None)
    if update is None:
        pytest.skip("AstrBot 4.14.6 changes a command's permission only at load (alter_cmd)")
    [handler] = [
        c["handler_full_name"]
        for c in await command_management.list_commands()
        if c["plugin"] == astrbot.plugin_dir.name and c["original_command"] == CMD_SETTINGS
    ]
    await update(handler, "member")
    try:
        event = await astrbot.dispatch(make_event("/画图配置", sender_id="10001"))
        assert event.sent_texts()[0].startswith("当前画图插件设置：")
    finally:
        await update(handler, "admin")
    event = await astrbot.dispatch(make_event("/画图配置", sender_id="10001"))
    assert event.sent_texts() == [refusal(CMD_SETTINGS)]
