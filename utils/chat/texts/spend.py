"""The spend side in words: daily cap refusals and the `/画图统计` (/draw_stats) report.

utils/spend/ hands plain data (`SpendStats`, `SpendReport`, ledger totals); it has no words.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...core.charges import Outcome
from ...core.errors import DailyCapReached
from ...core.settings import SpendPolicy
from ...openrouter.usage import KeyReport
from ...spend.ledger import SIZE_UNRECORDED, GroupTotals, Summary, Totals, UserTotals
from ...spend.report import SpendReport, SpendStats
from .language import Lang, Words, listing, phrases, say
from .units import count, day_clock, usd

# --- daily caps ----------------------------------------------------------------------------

_CAP_SUBJECT = {
    DailyCapReached.USER_COUNT: Words("你今天的画图数量", "your pictures"),
    DailyCapReached.GROUP_COUNT: Words("本群今天的画图数量", "this group's pictures"),
    DailyCapReached.USER_BUDGET: Words("你今天的画图花费", "your spend"),
    DailyCapReached.GROUP_BUDGET: Words("本群今天的画图花费", "this group's spend"),
    DailyCapReached.BOT_BUDGET: Words("机器人今天的画图总花费", "the bot's total spend"),
}
_ANY_CAP = Words("今天的画图用量", "today's use")
_CAP_RULE = {
    DailyCapReached.USER_COUNT: Words(
        "每人每天最多 {limit} 张", "at most {limit} per person a day"
    ),
    DailyCapReached.GROUP_COUNT: Words(
        "每群每天最多 {limit} 张", "at most {limit} per group a day"
    ),
    DailyCapReached.USER_BUDGET: Words("每人每天 {limit}", "{limit} per person a day"),
    DailyCapReached.GROUP_BUDGET: Words("每群每天 {limit}", "{limit} per group a day"),
    DailyCapReached.BOT_BUDGET: Words("每天共 {limit}", "{limit} a day in total"),
}
_ANY_RULE = Words("上限 {limit}", "limit {limit}")
_COUNT_CAPS = (DailyCapReached.USER_COUNT, DailyCapReached.GROUP_COUNT)


def cap_message(lang: Lang, error: DailyCapReached) -> str:
    """The refusal: which cap, its limit, and when it resets (the next local midnight)."""
    limit = f"{error.limit:g}" if error.cap in _COUNT_CAPS else usd(lang, error.limit)
    subject = _CAP_SUBJECT.get(error.cap, _ANY_CAP)(lang)
    rule = _CAP_RULE.get(error.cap, _ANY_RULE)(lang).format(limit=limit)
    at = day_clock(error.resets_at)
    if error.estimate is not None:
        return _estimate_over_cap(lang, error, subject, rule)
    return say(
        lang,
        zh=f"{subject}已达上限（{rule}），将在 {at} 重置，请明天再来。",
        en=f"Daily limit reached: {subject} ({rule}). It resets at {at}; please come back "
        "tomorrow.",
    )


def _estimate_over_cap(lang: Lang, error: DailyCapReached, subject: str, rule: str) -> str:
    """A money cap this request's estimated price would pass (nothing was sent)."""
    cost, used = usd(lang, error.estimate or 0.0), usd(lang, error.used)
    at = day_clock(error.resets_at)
    return say(
        lang,
        zh=f"这张图预计花费约 {cost}，{subject}已用 {used}，画了会超过上限（{rule}），"
        f"所以没有发出请求；上限将在 {at} 重置。",
        en=f"This picture would cost about {cost} and {subject} is at {used} already: it would "
        f"pass the daily limit ({rule}), so nothing was sent. The limit resets at {at}.",
    )


def caps_line(lang: Lang, policy: SpendPolicy) -> str:
    caps = []
    if policy.user_daily_limit:
        n = policy.user_daily_limit
        caps.append(say(lang, zh=f"每人每天 {n} 张", en=f"{count(n, 'picture')} per person a day"))
    if policy.group_daily_limit:
        n = policy.group_daily_limit
        caps.append(say(lang, zh=f"每群每天 {n} 张", en=f"{count(n, 'picture')} per group a day"))
    if policy.user_daily_budget_usd:
        money = usd(lang, policy.user_daily_budget_usd)
        caps.append(say(lang, zh=f"每人每天 {money}", en=f"{money} per person a day"))
    if policy.group_daily_budget_usd:
        money = usd(lang, policy.group_daily_budget_usd)
        caps.append(say(lang, zh=f"每群每天 {money}", en=f"{money} per group a day"))
    if policy.daily_budget_usd:
        money = usd(lang, policy.daily_budget_usd)
        caps.append(say(lang, zh=f"全部每天 {money}", en=f"{money} a day in total"))
    if not caps:
        return say(lang, zh="每日上限：未设置", en="Daily limits: none")
    if policy.caps_apply_to_admins:
        who = say(lang, zh="（管理员同样受限）", en=" (admins too)")
    else:
        who = say(lang, zh="（管理员不受限）", en=" (admins exempt)")
    return say(lang, zh="每日上限：", en="Daily limits: ") + phrases(lang, caps) + who


# --- /画图统计 -----------------------------------------------------------------------------------


def spend_text(lang: Lang, totals: Totals) -> str:
    """The spend of a total: unknown where nothing was reported, a note where some was missing
    (and where some is still being looked up)."""
    if totals.generations and totals.unknown == totals.generations and not totals.pending:
        return say(lang, zh="花费未知", en="spend unknown")
    text = usd(lang, totals.cost)
    notes = []
    unknown, pending = totals.unknown - totals.pending, totals.pending
    if unknown:
        notes.append(
            say(lang, zh=f"另有 {unknown} 次未报告花费", en=f"plus {unknown} without a known cost")
        )
    if pending:
        notes.append(say(lang, zh=f"{pending} 次花费查询中", en=f"{pending} being looked up"))
    if notes:
        text += say(lang, zh=f"（{phrases(lang, notes)}）", en=f" ({phrases(lang, notes)})")
    return text


# What became of a billed answer, as the statistics name it (utils/core/charges.Outcome).
OUTCOME_NAMES = {
    Outcome.PICTURE: Words("出图", "picture"),
    Outcome.REFUSAL: Words("拒绝", "refused"),
    Outcome.TEXT_ONLY: Words("只回复文字", "text only"),
    Outcome.INVALID_PICTURE: Words("图片无效", "invalid picture"),
    Outcome.UNDELIVERED: Words("未能发出", "not sent"),
    Outcome.ABORTED: Words("中途断开", "cut off"),
}


def outcome_name(lang: Lang, outcome: str) -> str:
    words = OUTCOME_NAMES.get(outcome)
    return words(lang) if words else outcome


def size_name(lang: Lang, size: str) -> str:
    """A ledger row's size: as sent, the model's default, or not recorded (old rows)."""
    if size == SIZE_UNRECORDED:
        return say(lang, zh="未记录", en="not recorded")
    return size or say(lang, zh="模型默认", en="model default")


def _billed_lines(lang: Lang, summary: Summary) -> list[str]:
    """The answers that were billed and put no picture in the chat, as their own figure."""
    totals = summary.totals
    lines = []
    if totals.without_picture:
        blank = [r.totals for r in summary.outcomes if r.outcome in Outcome.WITHOUT_PICTURE]
        n = totals.without_picture
        cost = spend_text(
            lang,
            Totals(
                generations=n,
                cost=totals.without_picture_cost,
                unknown=sum(t.unknown for t in blank),
                pending=sum(t.pending for t in blank),
            ),
        )
        kinds = listing(
            lang,
            (
                say(
                    lang,
                    zh=f"{outcome_name(lang, r.outcome)} {r.totals.generations} 次",
                    en=f"{r.totals.generations} {outcome_name(lang, r.outcome)}",
                )
                for r in summary.outcomes
                if r.outcome in Outcome.WITHOUT_PICTURE
            ),
        )
        lines.append(
            say(
                lang,
                zh=f"另有 {n} 次未出图但已计费：{cost}（{kinds}）",
                en=f"Plus {count(n, 'billed answer')} without a picture: {cost} ({kinds})",
            )
        )
    if totals.undelivered:
        n = totals.undelivered
        lines.append(
            say(
                lang,
                zh=f"其中 {n} 次生成的图片已计费，但没能发到聊天",
                en=f"Of these, {n} billed {'generation' if n == 1 else 'generations'} never "
                "reached the chat",
            )
        )
    return lines


def _amount_line(lang: Lang, totals: Totals) -> str:
    n = totals.pictures
    pictures = say(lang, zh=f"{n} 张", en=count(n, "picture"))
    return phrases(lang, (pictures, spend_text(lang, totals)))


def _with_platform(lang: Lang, name: str, platform: str, show: bool) -> str:
    if not show:
        return name
    return say(lang, zh=f"{name}（{platform}）", en=f"{name} ({platform})")


def _group_name(lang: Lang, row: GroupTotals, show_platform: bool) -> str:
    gid = row.group_id
    name = (
        say(lang, zh=f"群 {gid}", en=f"group {gid}")
        if gid
        else say(lang, zh="私聊", en="private chats")
    )
    return _with_platform(lang, name, row.platform, show_platform)


def _user_name(lang: Lang, row: UserTotals, show_platform: bool) -> str:
    return _with_platform(lang, row.user_id, row.platform, show_platform)


def _summary_lines(lang: Lang, title: str, summary: Summary) -> list[str]:
    totals = summary.totals
    p, g, spend = totals.pictures, totals.generations, spend_text(lang, totals)
    lines = [
        say(
            lang,
            zh=f"【{title}】{p} 张图（{g} 次生成），{spend}",
            en=f"[{title}] {count(p, 'picture')} ({count(g, 'generation')}), {spend}",
        )
    ]
    if not totals.generations:
        return lines
    lines += _billed_lines(lang, summary)
    platforms = {r.platform for r in summary.groups} | {r.platform for r in summary.users}
    several = len(platforms) > 1
    colon = say(lang, zh="：", en=": ")
    lines.append(say(lang, zh="按群：", en="By group:"))
    lines += [
        f"  · {_group_name(lang, r, several)}{colon}{_amount_line(lang, r.totals)}"
        for r in summary.groups
    ]
    lines.append(say(lang, zh="用户排行：", en="Top users:"))
    # "1、" / "#1", not "1.": WebChat's Markdown would make a list of "1." lines and pull the
    # lines after it into the last item.
    lines += [
        say(lang, zh=f"  {i}、", en=f"  #{i} ")
        + f"{_user_name(lang, r, several)}{colon}{_amount_line(lang, r.totals)}"
        for i, r in enumerate(summary.users, 1)
    ]
    lines.append(say(lang, zh="按模型：", en="By model:"))
    lines += [f"  · {r.model}{colon}{_amount_line(lang, r.totals)}" for r in summary.models]
    lines.append(say(lang, zh="按尺寸：", en="By size:"))
    lines += [
        f"  · {size_name(lang, r.size)}{colon}{_amount_line(lang, r.totals)}" for r in summary.sizes
    ]
    return lines


def key_line(lang: Lang, report: KeyReport) -> str:
    info = report.info
    if info is None:
        return say(
            lang,
            zh=f"  · {report.masked}：额度未知（服务未提供或查询失败）",
            en=f"  · {report.masked}: credit unknown (the service does not say, or the query "
            "failed)",
        )
    name = report.masked
    if info.shown_label:
        name += say(lang, zh=f"（{info.shown_label}）", en=f" ({info.shown_label})")
    if info.limit is None:
        quota = say(lang, zh="未设额度上限", en="no credit limit")
    elif info.limit_remaining is None:
        limit = usd(lang, info.limit)
        quota = say(lang, zh=f"额度 {limit}，剩余未知", en=f"limit {limit}, remaining unknown")
    else:
        left, limit = usd(lang, info.limit_remaining), usd(lang, info.limit)
        quota = say(lang, zh=f"剩余 {left} / 额度 {limit}", en=f"{left} left of {limit}")
    used = []
    if info.usage_daily is not None:
        money = usd(lang, info.usage_daily)
        used.append(say(lang, zh=f"今日已用 {money}", en=f"{money} used today"))
    if info.usage is not None:
        money = usd(lang, info.usage)
        used.append(say(lang, zh=f"累计已用 {money}", en=f"{money} used in total"))
    if info.is_free_tier:
        used.append(say(lang, zh="免费账户", en="free tier"))
    colon = say(lang, zh="：", en=": ")
    return f"  · {name}{colon}" + phrases(lang, (quota, *used))


def format_report(
    lang: Lang, report: SpendReport, keys: Sequence[KeyReport] | None, policy: SpendPolicy
) -> str:
    """The `/画图统计` answer: today, the last days, each key's remaining limit, the caps."""
    at = day_clock(report.at)
    lines = [say(lang, zh=f"📊 画图统计（{at}）", en=f"📊 Drawing statistics ({at})")]
    lines += _summary_lines(lang, say(lang, zh="今天", en="Today"), report.today)
    lines.append("")
    n = len(report.days)
    lines += _summary_lines(lang, say(lang, zh=f"近 {n} 天", en=f"Last {n} days"), report.week)
    if report.week.totals.generations:
        lines.append(say(lang, zh="每天：", en="Per day:"))
        colon = say(lang, zh="：", en=": ")
        lines += [f"  {d.day[5:]}{colon}{_amount_line(lang, d.totals)}" for d in report.days]
    lines.append("")
    if keys is None:
        lines.append(say(lang, zh="密钥额度：未查询", en="Key credit: not queried"))
    elif not keys:
        lines.append(say(lang, zh="密钥额度：没有配置密钥", en="Key credit: no keys configured"))
    else:
        lines.append(say(lang, zh="密钥额度：", en="Key credit:"))
        lines += [key_line(lang, k) for k in keys]
    lines.append(caps_line(lang, policy))
    return "\n".join(lines)


def stats_text(lang: Lang, stats: SpendStats) -> str:
    """The `/画图统计` reply from what the spend service gathered."""
    if stats.report is None:
        return say(
            lang,
            zh="花费记录暂时无法读取（插件可能正在重载或数据目录不可写），请查看 AstrBot 日志。",
            en="The spend records can't be read right now (the plugin may be reloading, or its "
            "data directory isn't writable); see the AstrBot log.",
        )
    return format_report(lang, stats.report, stats.keys, stats.policy)
