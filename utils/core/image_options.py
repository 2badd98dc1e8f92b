"""Aspect ratios the image models accept, and lenient reading of what admins and models write."""

from __future__ import annotations

import re

from .errors import InvalidArgumentError

# The values OpenRouter documents for image_config.aspect_ratio.
ASPECT_RATIOS: tuple[str, ...] = (
    "1:1",
    "2:3",
    "3:2",
    "3:4",
    "4:3",
    "4:5",
    "5:4",
    "9:16",
    "16:9",
    "21:9",
)
# Words meaning "let the model decide".
_DEFAULT_WORDS = frozenset({"", "auto", "default", "none", "null", "默认", "自动"})
# Models and admins write 16：9, 16x9, 16*9, 16/9 or "16 : 9"; all mean the same ratio.
_SEPARATORS = re.compile(r"\s*[:：xX×*/比]\s*")


def normalize_aspect_ratio(value: object) -> str | None:
    """The canonical ratio ('16:9'), '' for "model default", or None when it is not a valid one."""
    if value is None:
        return ""
    text = str(value).strip()
    if text.lower() in _DEFAULT_WORDS:
        return ""
    text = _SEPARATORS.sub(":", text, count=1)
    return text if text in ASPECT_RATIOS else None


def resolve_aspect_ratio(argument: object, default: str) -> str | None:
    """The ratio for one request: the tool argument when given, else the configured default.

    None means "leave it to the model". An argument that is not a documented ratio raises
    InvalidArgumentError listing the valid ones.
    """
    chosen = normalize_aspect_ratio(argument)
    if chosen is None:
        raise InvalidArgumentError(
            f"invalid aspect_ratio {str(argument)[:40]!r}",
            InvalidArgumentError.ASPECT_RATIO,
            str(argument)[:20],
            ASPECT_RATIOS,
        )
    return chosen or default or None
