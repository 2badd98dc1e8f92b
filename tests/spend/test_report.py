"""`/画图统计`'s text, made from real ledger queries."""

from __future__ import annotations

import re

from tests.support.ledger_rows import DAY, NOON, entry
from utils.chat.texts.language import EN, ZH
from utils.chat.texts.spend import format_report, spend_text
from utils.chat.texts.units import usd
from utils.core.settings import SpendPolicy
from utils.openrouter.usage import KeyInfo, KeyReport
from utils.spend.ledger import Ledger, Totals
from utils.spend.report import build_report

KEYS = [
    KeyReport("sk-or-…a1a1", KeyInfo("团队密钥", 10.0, 7.5, 2.5, 0.5, False)),
    KeyReport("sk-or-…b2b2", KeyInfo("sk-or-v1-abc...b2b2", None, None, 1.25, 0.0, True)),
    KeyReport("sk-or-…c3c3", None, "HTTP 404"),
]


async def test_report_of_today_and_the_last_seven_days(ledger: Ledger):
    await ledger.record(entry(user="10001", group="20002", cost=0.04))
    await ledger.record(entry(user="10001", group="20002", pictures=2, cost=0.08))
    await ledger.record(entry(user="10003", group="", cost=None))
    await ledger.record(
        entry(
            NOON - 3 * DAY,
            user="10009",
            group="30003",
            model="google/gemini-3-pro-image-preview",
            cost=0.134,
        )
    )
    await ledger.record(entry(NOON - 9 * DAY, user="ancient", group="40004", cost=9.0))

    report = await build_report(ledger, NOON)
    text = format_report(ZH, report, KEYS, SpendPolicy(user_daily_limit=20, daily_budget_usd=5))
    lines = text.splitlines()

    assert lines[0] == "📊 画图统计（11-30 12:00）"
    today = lines[1 : lines.index("")]
    assert today == [
        "【今天】4 张图（3 次生成），0.12 美元（另有 1 次未报告花费）",
        "按群：",
        "  · 群 20002：3 张，0.12 美元",
        "  · 私聊：1 张，花费未知",
        "用户排行：",
        "  1、10001：3 张，0.12 美元",
        "  2、10003：1 张，花费未知",
        "按模型：",
        "  · google/gemini-2.5-flash-image：4 张，0.12 美元（另有 1 次未报告花费）",
        "按尺寸：",
        "  · 1K：4 张，0.12 美元（另有 1 次未报告花费）",
    ]
    assert "【近 7 天】5 张图（4 次生成），0.254 美元（另有 1 次未报告花费）" in lines
    assert "  · 群 30003：1 张，0.134 美元" in lines
    assert "  · google/gemini-3-pro-image-preview：1 张，0.134 美元" in lines
    assert (
        "  11-27：1 张，0.134 美元" in lines
        and "  11-30：4 张，0.12 美元（另有 1 次未报告花费）" in lines
    )
    assert "  11-28：0 张，0.00 美元" in lines
    assert not any("ancient" in line or "40004" in line for line in lines)  # 9 days ago
    assert (
        "  · sk-or-…a1a1（团队密钥）：剩余 7.50 美元 / 额度 10.00 美元，今日已用 0.50 美元，累计已用 2.50 美元"
        in lines
    )
    assert (
        "  · sk-or-…b2b2：未设额度上限，今日已用 0.00 美元，累计已用 1.25 美元，免费账户" in lines
    )
    assert "  · sk-or-…c3c3：额度未知（服务未提供或查询失败）" in lines
    assert lines[-1] == "每日上限：每人每天 20 张，全部每天 5.00 美元（管理员不受限）"


async def test_an_empty_ledger_says_so_without_empty_sections(ledger: Ledger):
    text = format_report(ZH, await build_report(ledger, NOON), [], SpendPolicy())
    assert text.splitlines() == [
        "📊 画图统计（11-30 12:00）",
        "【今天】0 张图（0 次生成），0.00 美元",
        "",
        "【近 7 天】0 张图（0 次生成），0.00 美元",
        "",
        "密钥额度：没有配置密钥",
        "每日上限：未设置",
    ]


async def test_two_platforms_are_told_apart(ledger: Ledger):
    await ledger.record(entry(user="1", group="g"))
    await ledger.record(entry(user="1", group="g", platform="telegram"))
    text = format_report(ZH, await build_report(ledger, NOON), None, SpendPolicy())
    assert (
        "  · 群 g（aiocqhttp）：1 张，0.04 美元" in text
        and "  · 群 g（telegram）：1 张，0.04 美元" in text
    )
    assert "密钥额度：未查询" in text


def test_money_and_unknown_spend():
    amounts = (0, 0.039, 0.0012, 0.5, 1.234, 1234.5)
    numbers = ["0.00", "0.039", "0.0012", "0.50", "1.23", "1,234.50"]
    assert [usd(ZH, x) for x in amounts] == [f"{n} 美元" for n in numbers]
    assert [usd(EN, x) for x in amounts] == [f"USD {n}" for n in numbers]
    assert spend_text(ZH, Totals(2, 2, 0.0, 2)) == "花费未知"
    assert spend_text(ZH, Totals(0, 0, 0.0, 0)) == "0.00 美元"


# What WebChat's Markdown renderer (with maths) would rework: a dollar sign (two in one paragraph
# make a formula), a line starting an ordered or bullet list ("1." pulls the following lines
# into its item), a code block's four-space indent, emphasis markers.
MARKDOWN = re.compile(r"\$|^ {0,3}(\d+[.)]|[-*+]) |^ {4}|\*\*|__", re.MULTILINE)


async def test_the_report_holds_nothing_webchat_would_render_differently(ledger: Ledger):
    for user, group in (("10001", "20002"), ("10002", "20002"), ("10003", "")):
        await ledger.record(entry(user=user, group=group, cost=0.039))
    await ledger.record(entry(NOON - 2 * DAY, user="10001", group="20002", cost=0.134))
    report = await build_report(ledger, NOON)
    policy = SpendPolicy(user_daily_limit=20, user_daily_budget_usd=0.5, daily_budget_usd=5)
    for lang in (ZH, EN):
        text = format_report(lang, report, KEYS, policy)
        assert MARKDOWN.findall(text) == [], text
    english = format_report(EN, report, KEYS, policy)
    assert "  #1 10001: 2 pictures, USD 0.173" in english.splitlines()
    assert "USD 0.50 per person a day" in english
