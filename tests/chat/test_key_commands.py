"""A key out of credits through the chat: the reply says when to try again, the pool asks
GET /api/v1/key before refusing once more (credit bought meanwhile works without a reload),
and `/画图密钥 重置` clears a key's state. On a virtual clock; the fake OpenRouter answers."""

from __future__ import annotations

import time

from tests.fakes.openrouter import Reply, key_info
from tests.support.harness import make_event
from tests.support.keys import REAL_LOOKING_KEYS, sequence, use_keys

A, B = REAL_LOOKING_KEYS[:2]


def out_of_credits_text(wall: float, seconds: int) -> str:
    at = time.strftime("%H:%M:%S", time.localtime(wall + seconds))
    return (
        "OpenRouter 账户额度已用完，请管理员充值或更换密钥；"
        f"充值后可在 {at}（约 {seconds} 秒后）再试。"
    )


def key_checks(fake) -> int:
    return len(fake.key_requests())


async def test_credit_bought_after_a_402_is_used_without_a_reload(
    astrbot, fake, plugin_config, virtual_time
):
    fake.key_infos[A] = key_info(limit=10.0, limit_remaining=0.0)
    fake.enqueue(Reply.error(402, "Insufficient credits"))
    draw = make_event

    texts = await virtual_time.run_tool(draw(), image_description="a cat")
    assert texts == [out_of_credits_text(virtual_time.wall(), 60)]
    assert key_checks(fake) == 0  # it just said so: not asked again at once

    virtual_time.advance(30)
    texts = await virtual_time.run_tool(draw(), image_description="a cat")
    assert texts == [out_of_credits_text(virtual_time.wall(), 30)]
    assert (key_checks(fake), sequence(fake)) == (0, "A")  # refused before sending anything

    virtual_time.advance(30)
    texts = await virtual_time.run_tool(draw(), image_description="a cat")
    assert texts == [out_of_credits_text(virtual_time.wall(), 60)]  # asked: still 0 left
    assert (key_checks(fake), sequence(fake)) == (1, "A")

    fake.key_infos[A] = key_info(limit=20.0, limit_remaining=10.0)  # the admin bought credit
    virtual_time.advance(60)
    event = draw()
    await virtual_time.run_tool(event, image_description="a cat")
    assert (key_checks(fake), sequence(fake)) == (2, "AA")
    assert len(event.sent_images()) == 1


async def test_a_gateway_without_the_key_endpoint_keeps_the_long_cooldown(
    astrbot, fake, plugin_config, virtual_time
):
    fake.key_replies[A] = Reply.error(404, "Not Found")
    fake.enqueue(Reply.error(402, "Insufficient credits"))
    await virtual_time.run_tool(make_event(), image_description="a cat")
    virtual_time.advance(60)
    texts = await virtual_time.run_tool(make_event(), image_description="a cat")
    assert texts == [out_of_credits_text(virtual_time.wall(), 60)]
    assert (key_checks(fake), sequence(fake)) == (1, "A")
    virtual_time.advance(540)  # the 600 s cooldown is over: one request tries the key
    event = make_event()
    await virtual_time.run_tool(event, image_description="a cat")
    assert sequence(fake) == "AA" and len(event.sent_images()) == 1


async def test_an_admin_resets_one_key_and_it_is_used_at_once(
    astrbot, fake, plugin_config, admin, virtual_time
):
    use_keys(plugin_config, 2)
    fake.default = lambda r: Reply.error(402, "no credits") if r.key in (A, B) else None
    await virtual_time.run_tool(make_event(), image_description="a cat")
    assert sequence(fake) == "AB"
    fake.default = None

    plugin = virtual_time.plugin
    event = make_event(f"/画图密钥 重置 {B[-4:]}", sender_id=admin)
    await plugin.cmd_keys(event)
    [reply] = event.sent_texts()
    assert reply.startswith(
        "已清除 1 个密钥的冷却、额度用尽和无效状态（sk-or-…b2b2），下一次请求会先试用它们。\n"
        "OpenRouter 密钥池（2 个密钥"
    )
    assert "1、sk-or-…a1a1 | 额度用尽" in reply
    assert "2、sk-or-…b2b2 | 已重置，下一次请求会先试用 | 成功 0 / 失败 1" in reply

    drawn = make_event()
    await virtual_time.run_tool(drawn, image_description="a cat")
    assert sequence(fake) == "ABB" and len(drawn.sent_images()) == 1


async def test_reset_without_a_tail_clears_every_key(astrbot, fake, plugin_config, admin):
    use_keys(plugin_config, 2)
    fake.default = lambda r: Reply.error(401, "User not found")
    await astrbot.run_tool(make_event(), image_description="a cat")
    fake.default = None
    event = await astrbot.dispatch(make_event("/画图密钥 reset", sender_id=admin))
    [reply] = event.sent_texts()
    assert reply.startswith("已清除 2 个密钥的冷却、额度用尽和无效状态（sk-or-…a1a1、sk-or-…b2b2）")
    assert "无效" not in reply.split("\n", 1)[1]
    drawn = await astrbot.dispatch(make_event("/画图 a cat"))
    assert len(drawn.sent_images()) == 1


async def test_a_tail_that_names_no_key_changes_nothing(astrbot, fake, plugin_config, admin):
    use_keys(plugin_config, 2)
    event = await astrbot.dispatch(make_event("/画图密钥 重置 zzzz", sender_id=admin))
    assert event.sent_texts() == [
        "没有以“zzzz”结尾的密钥（至少写 4 位）。当前密钥：sk-or-…a1a1、sk-or-…b2b2"
    ]


async def test_other_words_after_the_keys_command_show_its_usage(
    astrbot, fake, plugin_config, admin
):
    event = await astrbot.dispatch(make_event("/画图密钥 删除", sender_id=admin))
    [reply] = event.sent_texts()
    assert reply.startswith("用法：/画图密钥 查看密钥池；/画图密钥 重置")


async def test_the_keys_reset_in_english(astrbot, fake, english, admin):
    use_keys(english, 2)
    fake.default = lambda r: Reply.error(401, "User not found")
    await astrbot.run_tool(make_event(), image_description="a cat")
    fake.default = None
    event = await astrbot.dispatch(make_event(f"/draw_keys reset {B[-4:]}", sender_id=admin))
    lines = event.sent_texts()[0].split("\n")
    assert lines[0] == (
        "Cleared the cooldown, out-of-credits and invalid state of 1 key (sk-or-…b2b2); "
        "the next request tries them first."
    )
    assert lines[2].startswith("#1 sk-or-…a1a1 | invalid (401)")
    assert lines[3].startswith("#2 sk-or-…b2b2 | reset, the next request tries it |")

    usage = await astrbot.dispatch(make_event("/draw_keys delete", sender_id=admin))
    assert usage.sent_texts()[0].startswith(
        "Usage: /draw_keys shows the key pool; /draw_keys reset"
    )
    unknown = await astrbot.dispatch(make_event("/draw_keys reset zzzz", sender_id=admin))
    assert unknown.sent_texts() == [
        'No key ends in "zzzz" (give at least 4 characters). The keys: sk-or-…a1a1, sk-or-…b2b2'
    ]
