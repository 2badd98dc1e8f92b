"""Image sizes and aspect ratios the image models accept, and lenient reading of what admins and
models write. Which model takes which of them is utils/openrouter/capabilities.py's business."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from .errors import InvalidArgumentError

ASPECT_RATIO = InvalidArgumentError.ASPECT_RATIO
IMAGE_SIZE = InvalidArgumentError.IMAGE_SIZE

# The values OpenRouter documents for image_config.aspect_ratio (every Gemini image model).
BASE_ASPECT_RATIOS: tuple[str, ...] = (
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
# Tall and wide strips, added by Gemini 3.1 Flash Image ("Nano Banana 2").
EXTENDED_ASPECT_RATIOS: tuple[str, ...] = ("1:4", "4:1", "1:8", "8:1")
ASPECT_RATIOS: tuple[str, ...] = BASE_ASPECT_RATIOS + EXTENDED_ASPECT_RATIOS

# image_config.image_size: "1K" is the default of the models that take it.
IMAGE_SIZES: tuple[str, ...] = ("1K", "2K", "4K")
# About how long the long side is at each size (Gemini: 1024 / 2048 / 4096 px at 1:1).
SIZE_PIXELS: dict[str, int] = {"1K": 1024, "2K": 2048, "4K": 4096}

# Words meaning "let the model decide".
_DEFAULT_WORDS = frozenset({"", "auto", "default", "none", "null", "默认", "自动"})
# Models and admins write 16：9, 16x9, 16*9, 16/9 or "16 : 9"; all mean the same ratio.
_SEPARATORS = re.compile(r"\s*[:：xX×*/比]\s*")
# 4k, 4K, "4 K", 4096, 4096px, 4k高清 ...: the digit (or pixel count) is what counts.
_SIZE = re.compile(r"(?P<k>[124])\s*k|(?P<px>1024|2048|4096)\s*(?:px)?", re.IGNORECASE)
_SIZE_BY_PIXELS = {str(px): size for size, px in SIZE_PIXELS.items()}


def normalize_aspect_ratio(value: object) -> str | None:
    """The canonical ratio ('16:9'), '' for "model default", or None when it is not a valid one."""
    if value is None:
        return ""
    text = str(value).strip()
    if text.lower() in _DEFAULT_WORDS:
        return ""
    text = _SEPARATORS.sub(":", text, count=1)
    return text if text in ASPECT_RATIOS else None


def normalize_image_size(value: object) -> str | None:
    """'1K', '2K' or '4K' (any case, or the pixel count); '' for "model default"; None if invalid."""
    if value is None:
        return ""
    text = str(value).strip()
    if text.lower() in _DEFAULT_WORDS:
        return ""
    match = _SIZE.fullmatch(text)
    if match is None:
        return None
    if match.group("k"):
        return f"{match.group('k')}K"
    return _SIZE_BY_PIXELS[match.group("px")]


def ratio_value(ratio: str) -> float:
    """Width over height of a canonical ratio ('16:9' -> 1.777...)."""
    width, height = ratio.split(":")
    return float(width) / float(height)


def ratio_distance(a: str, b: str) -> float:
    """How many times wider (or taller) one ratio is than the other: 1.0 for the same shape."""
    return math.exp(abs(math.log(ratio_value(a) / ratio_value(b))))


def _resolve(
    argument: object,
    default: str,
    normalize: Callable[[object], str | None],
    option: str,
    allowed: tuple[str, ...],
) -> str | None:
    chosen = normalize(argument)
    if chosen is None:
        raise InvalidArgumentError(
            f"invalid {option} {str(argument)[:40]!r}", option, str(argument)[:20], allowed
        )
    return chosen or default or None


def resolve_aspect_ratio(argument: object, default: str) -> str | None:
    """The ratio for one request: the tool argument when given, else the configured default.

    None means "leave it to the model". An argument that is not a known ratio raises
    InvalidArgumentError listing the valid ones.
    """
    return _resolve(argument, default, normalize_aspect_ratio, ASPECT_RATIO, ASPECT_RATIOS)


def resolve_image_size(argument: object, default: str) -> str | None:
    """The size for one request, like resolve_aspect_ratio: None means the model's default."""
    return _resolve(argument, default, normalize_image_size, IMAGE_SIZE, IMAGE_SIZES)
