"""OpenRouter's Image API on the wire: the body of `POST <base>/v1/images` and what its answer
holds. Pure functions; the client (utils/ttp.py) sends and reads, as it does for chat completions.

Request (OpenRouter's docs, 2026-06): `model`, `prompt`, `n`, and `resolution` / `aspect_ratio`
only when one was chosen (else the model's default); reference pictures go in
`input_references` as image_url parts holding the data URLs of the downscaled pictures.
Answer: `{"created", "data": [{"b64_json", "media_type"}, ...], "usage": {"cost", ...}}`, or an
`error` object shaped like chat completions' (classified by answers.classify_error). Not
streamed: only GPT Image models stream there, and the plain answer is what every model gives.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .answer_stream import MARKER
from .answers import ParsedAnswer
from .usage import usage_of

DEFAULT_MEDIA_TYPE = "image/png"
# Where a picture's base64 starts in an answer: the value of `b64_json`, or a data URL (a
# gateway that answers with URLs). Diverted to a temp file as it arrives (answer_stream).
ANSWER_MARKER = re.compile(rb'"b64_json"\s{0,8}:\s{0,8}"|' + MARKER.pattern, re.IGNORECASE)


def request_body(
    model: str,
    prompt: str,
    references: tuple[str, ...],
    resolution: str | None,
    aspect_ratio: str | None,
    n: int = 1,
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "prompt": prompt, "n": n}
    if resolution:
        body["resolution"] = resolution
    if aspect_ratio:
        body["aspect_ratio"] = aspect_ratio
    if references:
        body["input_references"] = [
            {"type": "image_url", "image_url": {"url": url}} for url in references
        ]
    return body


def _media_type(item: Mapping[str, Any]) -> str:
    media = item.get("media_type")
    if isinstance(media, str) and re.fullmatch(r"[\w.+-]+/[\w.+-]+", media.strip()):
        return media.strip().lower()
    return DEFAULT_MEDIA_TYPE  # the store tells the format by the bytes anyway


def parse_answer(payload: Mapping[str, Any]) -> ParsedAnswer:
    """The pictures of an Image API answer as data URLs (or the URLs it gave), and its usage.

    A `b64_json` diverted while reading holds a token of base64 letters in place of the data,
    so the data URL built here is what AnswerReader.take() turns back into the picture.
    """
    urls: list[str] = []
    for item in payload.get("data") or []:
        if not isinstance(item, Mapping):
            continue
        data = item.get("b64_json")
        if isinstance(data, str) and data.strip():
            urls.append(f"data:{_media_type(item)};base64,{data.strip()}")
        elif isinstance(item.get("url"), str) and item["url"].strip():
            urls.append(item["url"].strip())
    return ParsedAnswer(tuple(dict.fromkeys(urls)), "", (), usage_of(payload))
