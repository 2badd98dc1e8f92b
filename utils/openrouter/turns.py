"""A continued edit's conversation history on chat completions: the previous turn, sent back.

Gemini 3 image models keep the most context of an edit when the turn that made the picture
comes back as it happened (Google's multi-turn image editing): the user's text, then the
assistant message with its picture and its `reasoning_details` (the thought signatures)
exactly as OpenRouter returned them. OpenRouter's assistant message takes `images` and
`reasoning_details` in a request as it gives them in an answer, and passes the details on to
the provider. Only the one previous turn is sent (capabilities.keeps_turns says for which
models); every other model gets the last picture as a plain reference instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# A picture of the history goes as it was delivered, at most this big: what delivery sends by
# default (send_image_max_mb), under which a 4K picture goes out as a JPEG. A bigger one (a
# higher send limit) is continued as a plain, shrunk reference instead.
MAX_IMAGE_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class PreviousTurn:
    """The turn a continued edit goes on from."""

    prompt: str  # the text its user message carried (after translation)
    text: str  # what the model said beside its picture
    image_urls: tuple[str, ...]  # its pictures as data URLs (as they were delivered)
    reasoning_details: tuple[Mapping[str, Any], ...]

    @property
    def encoded_bytes(self) -> int:
        """About what its pictures add to a request body (the data URLs' length)."""
        return sum(len(url) for url in self.image_urls)


def history_messages(turn: PreviousTurn) -> list[dict[str, Any]]:
    """The previous turn as the first two messages of a chat completions request."""
    return [
        {"role": "user", "content": [{"type": "text", "text": turn.prompt}]},
        {
            "role": "assistant",
            "content": turn.text,
            "images": [{"type": "image_url", "image_url": {"url": u}} for u in turn.image_urls],
            "reasoning_details": [dict(detail) for detail in turn.reasoning_details],
        },
    ]
