"""/画图密钥 (/draw_keys): the key pool as admins see it, one line per (masked) key."""

from __future__ import annotations

from ...openrouter.key_pool import RESET_BY_ADMIN, KeyState, KeyStatus
from .command_names import KEYS
from .language import Lang, Words, listing, say
from .units import clock_time, count

_STATE_TEXT = {
    KeyState.OK: Words("正常", "OK"),
    KeyState.UNTESTED: Words("尚未使用", "not used yet"),
    KeyState.COOLING_DOWN: Words(
        "限流冷却中，{until} 恢复", "cooling down after a rate limit until {until}"
    ),
    KeyState.OUT_OF_CREDITS: Words(
        "额度用尽，{until} 再试", "out of credits, tried again at {until}"
    ),
    KeyState.INVALID: Words(
        "无效（401），修改配置后才会再用", "invalid (401), not used until the keys are changed"
    ),
}

_LAST_FAILURE = {
    "failure": Words(
        "网络或服务故障，与密钥无关", "network or service failure, not the key's fault"
    ),
    "rate limited": Words("被限流，冷却已结束", "rate-limited, cooldown over"),
    "out of credits": Words("额度用尽，已到重试时间", "out of credits, time to try again"),
}
_FAILED = Words("请求失败", "request failed")


def format_pool_status(lang: Lang, rows: list[KeyStatus], model: str = "") -> str:
    """The admin command's answer: one line per key, masked."""
    if not rows:
        return say(
            lang,
            zh="OpenRouter 密钥池为空：插件配置中还没有可用的 API 密钥。",
            en="The OpenRouter key pool is empty: the plugin settings have no usable API key yet.",
        )
    n = len(rows)
    header = say(
        lang,
        zh=f"OpenRouter 密钥池（{n} 个密钥" + (f"，模型 {model}" if model else "") + "）：",
        en=f"OpenRouter key pool ({count(n, 'key')}" + (f", model {model}" if model else "") + "):",
    )
    lines = [header]
    for i, row in enumerate(rows, 1):
        until = clock_time(row.until) if row.until is not None else ""
        state = _STATE_TEXT[row.state](lang).format(until=until)
        if row.state is KeyState.UNTESTED and row.last_error == RESET_BY_ADMIN:
            state = say(
                lang, zh="已重置，下一次请求会先试用", en="reset, the next request tries it"
            )
        elif row.state is KeyState.UNTESTED and row.failures:
            # Tried, never answered yet, nothing against the key itself (or its wait is over).
            last = _LAST_FAILURE.get(row.last_error, _FAILED)(lang)
            state = say(
                lang,
                zh=f"可用，尚无成功请求（最近一次失败：{last}）",
                en=f"usable, no successful request yet (last failure: {last})",
            )
        busy = say(lang, zh=f"，进行中 {row.in_flight}", en=f", {row.in_flight} in flight")
        busy = busy if row.in_flight else ""
        ok, failed = row.successes, row.failures
        # "1、" / "#1", not "1.": WebChat's Markdown would make a list of "1." lines and pull
        # the closing line into the last item (as in spend.py's top users).
        lines.append(
            say(
                lang,
                zh=f"{i}、{row.masked} | {state} | 成功 {ok} / 失败 {failed}{busy}",
                en=f"#{i} {row.masked} | {state} | succeeded {ok} / failed {failed}{busy}",
            )
        )
    lines.append(
        say(
            lang,
            zh="（成功/失败为本次启动或修改密钥配置以来的请求次数）",
            en="(successes and failures count requests since this start or the last change of keys)",
        )
    )
    return "\n".join(lines)


def keys_reset(lang: Lang, masked: list[str]) -> str:
    """`/画图密钥 重置`: which keys had their state cleared."""
    if not masked:
        return say(
            lang,
            zh="没有配置密钥，没有可以重置的状态。",
            en="No keys are configured: there is nothing to reset.",
        )
    n, which = len(masked), listing(lang, masked)
    return say(
        lang,
        zh=f"已清除 {n} 个密钥的冷却、额度用尽和无效状态（{which}），下一次请求会先试用它们。",
        en=f"Cleared the cooldown, out-of-credits and invalid state of {count(n, 'key')} "
        f"({which}); the next request tries them first.",
    )


def usage_keys(lang: Lang, prefix: str = "/") -> str:
    name = prefix + KEYS(lang)
    return say(
        lang,
        zh=f"用法：{name} 查看密钥池；{name} 重置 清除全部密钥的冷却、额度用尽和无效状态；"
        f"{name} 重置 <密钥末尾几位> 只清除一个（如 {name} 重置 abcd）。",
        en=f"Usage: {name} shows the key pool; {name} reset clears the cooldown, out-of-credits "
        f"and invalid state of every key; {name} reset <last characters> clears one "
        f"(e.g. {name} reset abcd).",
    )
