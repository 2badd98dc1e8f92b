"""Every Chinese text of the spend package: the cap refusal and the `/画图统计` report.

(Kept in this one module until utils/chat/texts.py exists on main; then it folds in there.)
Pure functions of plain data: no I/O, no clock.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..core.errors import DailyCapReached
from ..core.settings import SpendPolicy
from ..openrouter.usage import KeyReport
from .ledger import GroupTotals, Summary, Totals, UserTotals
from .report import SpendReport

_CAP_SUBJECT = {
    DailyCapReached.USER_COUNT: "你今天的画图数量",
    DailyCapReached.GROUP_COUNT: "本群今天的画图数量",
    DailyCapReached.USER_BUDGET: "你今天的画图花费",
    DailyCapReached.GROUP_BUDGET: "本群今天的画图花费",
    DailyCapReached.BOT_BUDGET: "机器人今天的画图总花费",
}
_CAP_RULE = {
    DailyCapReached.USER_COUNT: "每人每天最多 {limit} 张",
    DailyCapReached.GROUP_COUNT: "每群每天最多 {limit} 张",
    DailyCapReached.USER_BUDGET: "每人每天 {limit}",
    DailyCapReached.GROUP_BUDGET: "每群每天 {limit}",
    DailyCapReached.BOT_BUDGET: "每天共 {limit}",
}
_COUNT_CAPS = (DailyCapReached.USER_COUNT, DailyCapReached.GROUP_COUNT)
# The dashboard page's error line when an endpoint fails (its own labels live in the page).
DASHBOARD_LEDGER_UNAVAILABLE = "花费记录暂时无法读取（插件可能正在重载），请稍后刷新。"
DASHBOARD_FAILED = "读取统计时出错，请查看 AstrBot 日志。"


def usd(amount: float) -> str:
    """Dollars with enough digits for a single picture's cost (a few cents)."""
    if amount >= 100:
        return f"${amount:,.2f}"
    if amount >= 1 or amount == 0:
        return f"${amount:.2f}"
    digits = f"{amount:.4f}".rstrip("0")
    return "$" + (digits if len(digits.split(".")[1]) >= 2 else f"{amount:.2f}")


def _clock(epoch: float) -> str:
    return time.strftime("%m-%d %H:%M", time.localtime(epoch))


def cap_message(error: DailyCapReached) -> str:
    """The refusal: which cap, its limit, and when it resets (the next local midnight)."""
    limit = f"{error.limit:g}" if error.cap in _COUNT_CAPS else usd(error.limit)
    subject = _CAP_SUBJECT.get(error.cap, "今天的画图用量")
    rule = _CAP_RULE.get(error.cap, "上限 {limit}").format(limit=limit)
    return f"{subject}已达上限（{rule}），将在 {_clock(error.resets_at)} 重置，请明天再来。"


# --- /画图统计 ------------------------------------------------------------------------------------


def spend_text(totals: Totals) -> str:
    """The spend of a total; '未知' where nothing was reported, a note where some was missing."""
    if totals.generations and totals.unknown == totals.generations:
        return "花费未知"
    text = usd(totals.cost)
    if totals.unknown:
        text += f"（另有 {totals.unknown} 次未报告花费）"
    return text


def _amount_line(totals: Totals) -> str:
    return f"{totals.pictures} 张，{spend_text(totals)}"


def _group_name(row: GroupTotals, show_platform: bool) -> str:
    name = f"群 {row.group_id}" if row.group_id else "私聊"
    return f"{name}（{row.platform}）" if show_platform else name


def _user_name(row: UserTotals, show_platform: bool) -> str:
    return f"{row.user_id}（{row.platform}）" if show_platform else row.user_id


def _summary_lines(title: str, summary: Summary) -> list[str]:
    totals = summary.totals
    lines = [
        f"【{title}】{totals.pictures} 张图（{totals.generations} 次生成），{spend_text(totals)}"
    ]
    if not totals.generations:
        return lines
    platforms = {r.platform for r in summary.groups} | {r.platform for r in summary.users}
    several = len(platforms) > 1
    lines.append("按群：")
    lines += [f"  · {_group_name(r, several)}：{_amount_line(r.totals)}" for r in summary.groups]
    lines.append("用户排行：")
    lines += [
        f"  {i}. {_user_name(r, several)}：{_amount_line(r.totals)}"
        for i, r in enumerate(summary.users, 1)
    ]
    lines.append("按模型：")
    lines += [f"  · {r.model}：{_amount_line(r.totals)}" for r in summary.models]
    return lines


def key_line(report: KeyReport) -> str:
    info = report.info
    if info is None:
        return f"  · {report.masked}：额度未知（服务未提供或查询失败）"
    name = report.masked + (f"（{info.shown_label}）" if info.shown_label else "")
    if info.limit is None:
        quota = "未设额度上限"
    elif info.limit_remaining is None:
        quota = f"额度 {usd(info.limit)}，剩余未知"
    else:
        quota = f"剩余 {usd(info.limit_remaining)} / 额度 {usd(info.limit)}"
    used = []
    if info.usage_daily is not None:
        used.append(f"今日已用 {usd(info.usage_daily)}")
    if info.usage is not None:
        used.append(f"累计已用 {usd(info.usage)}")
    if info.is_free_tier:
        used.append("免费账户")
    return f"  · {name}：{quota}" + ("，" + "，".join(used) if used else "")


def caps_line(policy: SpendPolicy) -> str:
    caps = []
    if policy.user_daily_limit:
        caps.append(f"每人每天 {policy.user_daily_limit} 张")
    if policy.group_daily_limit:
        caps.append(f"每群每天 {policy.group_daily_limit} 张")
    if policy.user_daily_budget_usd:
        caps.append(f"每人每天 {usd(policy.user_daily_budget_usd)}")
    if policy.group_daily_budget_usd:
        caps.append(f"每群每天 {usd(policy.group_daily_budget_usd)}")
    if policy.daily_budget_usd:
        caps.append(f"全部每天 {usd(policy.daily_budget_usd)}")
    if not caps:
        return "每日上限：未设置"
    who = "（管理员同样受限）" if policy.caps_apply_to_admins else "（管理员不受限）"
    return "每日上限：" + "，".join(caps) + who


def format_report(
    report: SpendReport, keys: Sequence[KeyReport] | None, policy: SpendPolicy
) -> str:
    """The `/画图统计` answer: today, the last days, each key's remaining limit, the caps."""
    lines = [f"📊 画图统计（{_clock(report.at)}）"]
    lines += _summary_lines("今天", report.today)
    lines.append("")
    lines += _summary_lines(f"近 {len(report.days)} 天", report.week)
    if report.week.totals.generations:
        lines.append("每天：")
        lines += [
            f"  {d.day[5:]}：{d.totals.pictures} 张，{spend_text(d.totals)}" for d in report.days
        ]
    lines.append("")
    if keys is None:
        lines.append("密钥额度：未查询")
    elif not keys:
        lines.append("密钥额度：没有配置密钥")
    else:
        lines.append("密钥额度：")
        lines += [key_line(k) for k in keys]
    lines.append(caps_line(policy))
    return "\n".join(lines)
