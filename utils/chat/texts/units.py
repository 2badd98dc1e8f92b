"""Times, durations, money and sizes as messages show them (the one formatter of each)."""

from __future__ import annotations

import math
import time

from .language import Lang, say


def clock_time(epoch: float) -> str:
    """A wall-clock moment as people in the chat read it: local HH:MM:SS."""
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def day_clock(epoch: float) -> str:
    """A moment with its day, local: MM-DD HH:MM."""
    return time.strftime("%m-%d %H:%M", time.localtime(epoch))


def whole_seconds(value: float) -> int:
    """Seconds for a message: rounded up, never 0 ("约 0 秒后" reads like a bug)."""
    return max(1, math.ceil(value))


def seconds(lang: Lang, value: float) -> str:
    """A duration: "12 秒" / "12 s"."""
    n = whole_seconds(value)
    return say(lang, zh=f"{n} 秒", en=f"{n} s")


def dollars(amount: float) -> str:
    """A dollar amount's number, with enough digits for a single picture's cost (a few cents)."""
    if amount >= 100:
        return f"{amount:,.2f}"
    if amount >= 1 or amount == 0:
        return f"{amount:.2f}"
    digits = f"{amount:.4f}".rstrip("0")
    return digits if len(digits.split(".")[1]) >= 2 else f"{amount:.2f}"


def money(lang: Lang, number: str) -> str:
    """Dollars in chat: "0.195 美元" / "USD 0.195". Never a bare `$`: WebChat renders Markdown
    with maths, where two dollar signs in one paragraph make the text between them a formula."""
    return say(lang, zh=f"{number} 美元", en=f"USD {number}")


def usd(lang: Lang, amount: float) -> str:
    return money(lang, dollars(amount))


def mb(size: int) -> str:
    return f"{size / 1048576:.1f} MB"  # MiB, like the config's MB limits


def count(n: int, singular: str, plural: str = "") -> str:
    """An English count with its noun: "1 picture", "3 pictures"."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def capitalized(text: str) -> str:
    """An English clause as the start of a sentence."""
    return text[:1].upper() + text[1:]
