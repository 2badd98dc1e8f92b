"""Lenient reading of tool arguments: chat models send booleans as strings and add stray keys."""

from __future__ import annotations

_TRUE = frozenset({"true", "1", "yes", "y", "on", "是", "对", "要"})
_FALSE = frozenset({"false", "0", "no", "n", "off", "否", "不", "不要", "none", "null"})


def coerce_bool(value: object, default: bool) -> bool:
    """Read a boolean the way a model may send it; anything unrecognised keeps the default."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return default


def coerce_text(value: object) -> str:
    """A prompt as clean text; None and non-strings become '' or their str()."""
    if value is None:
        return ""
    return (value if isinstance(value, str) else str(value)).strip()


def clip_text(text: str, limit: int) -> str:
    """One line of at most `limit` characters, for logs and short chat texts."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
