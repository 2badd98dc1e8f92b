"""Minimal stand-in: the images a chat message carries, for /改图 and /手办化.

Finds Image components in the message and in a quoted (Reply) message and turns them into data
URLs. utils/reference_images.py (reference-image collection, sizing and MIME handling) replaces
this module when it lands; keep this one small so the swap is trivial.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from astrbot.api.message_components import BaseMessageComponent, Image, Reply

from .errors import InvalidArgumentError
from .image_store import inspect_image
from .ttp import decode_base64

MAX_IMAGES = 4


def find_images(components: Iterable[BaseMessageComponent]) -> list[Image]:
    """Images of the message first, then those of the quoted message."""
    own: list[Image] = []
    quoted: list[Image] = []
    for component in components:
        if isinstance(component, Image):
            own.append(component)
        elif isinstance(component, Reply):
            quoted.extend(c for c in component.chain or [] if isinstance(c, Image))
    return (own + quoted)[:MAX_IMAGES]


def _mime_of(b64: str) -> str:
    return "image/" + inspect_image(decode_base64(b64)).format.lower()


async def to_data_urls(images: Iterable[Image]) -> tuple[str, ...]:
    urls: list[str] = []
    for image in images:
        try:
            b64 = await image.convert_to_base64()
            mime = await asyncio.to_thread(_mime_of, b64)
        except Exception as exc:  # unreachable URL, missing file, not an image
            raise InvalidArgumentError(
                f"reference image unreadable: {type(exc).__name__}: {str(exc)[:200]}",
                "无法读取你提供的图片，请重新发送图片后再试。",
            ) from exc
        urls.append(f"data:{mime};base64,{b64}")
    return tuple(urls)
