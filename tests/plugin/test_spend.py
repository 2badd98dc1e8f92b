"""Daily caps and the ledger inside the real AstrBot: the tool through its executor, commands
through its pipeline, the ledger across a reload.

Every generation of the test session lands in the one ledger of the plugin's data directory.
Tests that count against a cap run on an instance whose clock stands on a day of its own
(`on_day`), so only their own generations are "today"; tests through dispatch use the loaded
plugin (real clock) with users and groups no other test uses.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta

import pytest

from tests.fakes.openrouter import Reply, completion, data_url, key_info, make_png
from tests.support.harness import make_event
from tests.support.keys import REAL_LOOKING_KEYS
from tests.support.ledger_rows import fresh_id, rows_of


async def draw(astrbot, plugin, *, user: str, group: str | None = "g-1", role: str = "member"):
    event = make_event(sender_id=user, group_id=group, role=role)
    [text] = await astrbot.run_tool(event, plugin=plugin, image_description=f"a cat for {user}")
    return text


CAPS = [
    # (config, who draws until the cap is reached, who is refused then, the message's words)
    (
        {"user_daily_limit": 2},
        [("u1", "g1"), ("u1", "g1")],
        ("u1", "g2"),
        "你今天的画图数量已达上限（每人每天最多 2 张）",
    ),
    (
        {"group_daily_limit": 2},
        [("u1", "g1"), ("u2", "g1")],
        ("u3", "g1"),
        "本群今天的画图数量已达上限（每群每天最多 2 张）",
    ),
    (
        {"user_daily_budget_usd": 0.07},  # two pictures at 0.039
        [("u1", "g1"), ("u1", None)],
        ("u1", "g2"),
        "你今天的画图花费已达上限（每人每天 0.07 美元）",
    ),
    (
        {"group_daily_budget_usd": 0.05},
        [("u1", "g1"), ("u2", "g1")],
        ("u3", "g1"),
        "本群今天的画图花费已达上限（每群每天 0.05 美元）",
    ),
    (
        {"daily_budget_usd": 0.1},  # three pictures
        [("u1", "g1"), ("u2", "g2"), ("u3", None)],
        ("u4", "g4"),
        "机器人今天的画图总花费已达上限（每天共 0.10 美元）",
    ),
]


@pytest.mark.parametrize(
    ("config", "drawn", "refused", "words"), CAPS, ids=[next(iter(c[0])) for c in CAPS]
)
async def test_every_cap_refuses_before_any_request(
    astrbot, fake, plugin_config, on_day, config, drawn, refused, words
):
    clock, plugin = on_day
    plugin_config.update(config)
    for user, group in drawn:
        assert "已生成 1 张图片" in await draw(astrbot, plugin, user=user, group=group)
    assert len(fake.chat_requests()) == len(drawn)

    text = await draw(astrbot, plugin, user=refused[0], group=refused[1])
    midnight = (datetime.fromtimestamp(clock.wall()) + timedelta(days=1)).strftime("%m-%d 00:00")
    assert text == f"{words}，将在 {midnight} 重置，请明天再来。"
    assert len(fake.chat_requests()) == len(drawn)  # nothing reached the image service
    assert plugin.spend.guard.in_flight == 0


async def test_a_refusal_through_a_command(astrbot, fake, plugin_config):
    user = fresh_id("cmd")
    plugin_config["user_daily_limit"] = 1
    first = await astrbot.dispatch(make_event("/画图 a red fox", sender_id=user))
    assert len(first.sent_images()) == 1
    second = await astrbot.dispatch(make_event("/画图 a blue fox", sender_id=user))
    [reply] = second.sent_texts()
    assert reply.startswith("你今天的画图数量已达上限（每人每天最多 1 张）")
    assert second.sent_images() == []
    assert [r.prompt for r in fake.chat_requests()] == ["a red fox"]


async def test_a_burst_at_a_count_cap_gets_exactly_the_pictures_left(
    astrbot, fake, plugin_config, on_day
):
    _, plugin = on_day
    plugin_config["user_daily_limit"] = 4
    # One picture first: a key that never succeeded takes one request at a time.
    assert "已生成" in await draw(astrbot, plugin, user="burst")

    def slow(recorded):  # keeps every admitted request in flight while the others arrive
        picture = data_url(make_png(recorded.prompt))
        return Reply(json_body=completion(images=[picture]), delay=0.2)

    fake.default = slow
    texts = await asyncio.gather(*(draw(astrbot, plugin, user="burst") for _ in range(10)))
    drawn = [t for t in texts if "已生成" in t]
    refused = [t for t in texts if "已达上限" in t]
    assert (len(drawn), len(refused)) == (3, 7)
    assert len(fake.chat_requests()) == 4
    assert plugin.spend.guard.in_flight == 0


async def test_a_failed_generation_gives_its_picture_back(astrbot, fake, plugin_config, on_day):
    _, plugin = on_day
    plugin_config["user_daily_limit"] = 1
    plugin_config["max_retry_attempts"] = 1
    fake.enqueue(Reply.error(400, "bad request"))
    assert "拒绝" in await draw(astrbot, plugin, user="u1")
    assert "已生成" in await draw(astrbot, plugin, user="u1")
    assert "已达上限" in await draw(astrbot, plugin, user="u1")
    assert len(fake.chat_requests()) == 2


async def test_unknown_cost_counts_pictures_but_never_blocks(astrbot, fake, plugin_config, on_day):
    _, plugin = on_day
    fake.report_cost = False
    plugin_config.update(user_daily_budget_usd=0.01, daily_budget_usd=0.01, group_daily_limit=3)
    user = fresh_id("unknown")
    for _ in range(3):
        assert "已生成" in await draw(astrbot, plugin, user=user)
    assert "每群每天最多 3 张" in await draw(astrbot, plugin, user="u2")
    rows = await rows_of(plugin, user)
    assert [(r.cost, r.pictures) for r in rows] == [(None, 1)] * 3


async def test_admins_are_exempt_unless_configured(astrbot, fake, plugin_config, on_day):
    _, plugin = on_day
    plugin_config["user_daily_limit"] = 1
    for _ in range(2):
        assert "已生成" in await draw(astrbot, plugin, user="boss", role="admin")
    plugin_config["caps_apply_to_admins"] = True
    assert "已达上限" in await draw(astrbot, plugin, user="boss", role="admin")
    assert len(fake.chat_requests()) == 2


async def test_the_ledger_records_what_the_answer_reported(astrbot, fake, plugin_config, on_day):
    _, plugin = on_day
    fake.enqueue(
        Reply(
            json_body=completion(
                images=[data_url(make_png("one")), data_url(make_png("two"))], cost=0.0781
            )
        )
    )
    user = fresh_id("rec")
    assert "已生成 2 张图片" in await draw(astrbot, plugin, user=user, group="g7")
    [row] = await rows_of(plugin, user)
    assert (row.group_id, row.platform) == ("g7", "test")
    assert (row.pictures, row.cost, row.prompt_tokens, row.completion_tokens) == (
        2,
        0.0781,
        10,
        1290,
    )
    assert row.model == plugin_config["model_name"]
    assert row.key_mask == "sk-or-…a1a1" and REAL_LOOKING_KEYS[0] not in repr(row)
    assert len(row.files) == 2 and all(n.startswith("gemini_image_") for n in row.files)


def _count(text: str, section: str) -> int:
    [line] = [line for line in text.splitlines() if line.startswith(f"【{section}】")]
    return int(re.match(rf"【{section}】(\d+) 张图", line).group(1))


async def test_the_ledger_survives_a_reload(astrbot, fake, plugin_config, admin):
    """Through AstrBot's pipeline with the loaded plugin: the whole session's pictures are
    today's, so the test counts the one it adds."""

    async def stats() -> str:
        event = await astrbot.dispatch(make_event("/画图统计", sender_id=admin))
        [text] = event.sent_texts()
        return text

    before = await stats()
    event = await astrbot.dispatch(make_event("/画图 a lighthouse", sender_id=fresh_id("r")))
    assert len(event.sent_images()) == 1

    reloaded = await astrbot.reload()  # terminate(), a new instance: like a config save
    reloaded.config.update(plugin_config)
    after = await stats()
    assert _count(after, "今天") == _count(before, "今天") + 1
    assert _count(after, "近 7 天") == _count(before, "近 7 天") + 1


async def test_stats_of_a_day(astrbot, fake, plugin_config, on_day):
    clock, plugin = on_day
    plugin_config.update(user_daily_limit=10, daily_budget_usd=2)
    await draw(astrbot, plugin, user="u1", group="g1")
    await draw(astrbot, plugin, user="u1", group="g1")
    fake.report_cost = False
    await draw(astrbot, plugin, user="u2", group=None)
    fake.key_infos[REAL_LOOKING_KEYS[0]] = key_info(limit=10.0, limit_remaining=3.5)
    for _ in range(300):  # the unreported cost is looked up in the background, in vain
        if not plugin.spend.lookups.running:
            break
        await asyncio.sleep(0.01)

    event = make_event("/画图统计", sender_id="admin", role="admin")
    await plugin.cmd_stats(event)
    [text] = event.sent_texts()
    today = text.splitlines()[1 : text.splitlines().index("")]
    assert today == [
        "【今天】3 张图（3 次生成），0.078 美元（另有 1 次未报告花费）",
        "按群：",
        "  · 群 g1：2 张，0.078 美元",
        "  · 私聊：1 张，花费未知",
        "用户排行：",
        "  1、u1：2 张，0.078 美元",
        "  2、u2：1 张，花费未知",
        "按模型：",
        "  · google/gemini-2.5-flash-image：3 张，0.078 美元（另有 1 次未报告花费）",
        "按尺寸：",
        "  · 模型默认：3 张，0.078 美元（另有 1 次未报告花费）",
    ]
    assert (
        "  · sk-or-…a1a1：剩余 3.50 美元 / 额度 10.00 美元，今日已用 0.50 美元，累计已用 2.50 美元"
        in text
    )
    assert text.endswith("每日上限：每人每天 10 张，全部每天 2.00 美元（管理员不受限）")
    assert REAL_LOOKING_KEYS[0] not in text
    [unreported] = [r for r in await rows_of(plugin, "u2") if r.at == clock.wall()]
    assert unreported.cost_status == "unknown"  # looked up in vain: the fake never knew it
    assert len(fake.generation_lookups(unreported.generation_id)) == 5
    [key_request] = fake.key_requests()
    assert key_request.path == "/api/v1/key" and key_request.key == REAL_LOOKING_KEYS[0]


async def test_stats_are_for_admins_only(astrbot, fake, plugin_config):
    event = await astrbot.dispatch(make_event("/画图统计", sender_id=fresh_id("m")))
    assert not any("画图统计（" in t for t in event.sent_texts())
    assert fake.key_requests() == []


async def test_settings_and_help_show_the_caps(astrbot, fake, plugin_config, admin):
    plugin_config.update(group_daily_limit=30, daily_budget_usd=5, caps_apply_to_admins=True)
    settings = await astrbot.dispatch(make_event("/画图配置", sender_id=admin))
    [text] = settings.sent_texts()
    assert "每日上限：每群每天 30 张，全部每天 5.00 美元（管理员同样受限）" in text
    assert "花费记录保留：30 天" in text
    helped = await astrbot.dispatch(make_event("/画图帮助"))
    [help_text] = helped.sent_texts()
    assert "/画图统计 —— " in help_text
    assert "每日上限：每群每天 30 张，全部每天 5.00 美元（管理员同样受限）。" in help_text
