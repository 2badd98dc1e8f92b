"""What an OpenRouter chat-completion answer means: its images, text and finish reasons, or
the error it stands for. Pure functions of the bytes and headers; no I/O."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.charges import Usage
from ..core.errors import (
    BadRequestError,
    InvalidKeyError,
    ModalitiesUnsupportedError,
    ModelUnavailableError,
    ModerationError,
    OutOfCreditsError,
    RateLimitedError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from ..core.keys import redact_keys
from .retry_policy import parse_retry_after
from .usage import usage_of

# finish_reason / native_finish_reason values meaning "declined to draw" (OpenRouter's
# normalised value and Gemini's own, lower-cased).
REFUSAL_REASONS = frozenset(
    {
        "content_filter",
        "image_safety",
        "image_prohibited_content",
        "safety",
        "prohibited_content",
        "blocklist",
        "spii",
    }
)
# A data URL inside free text (markdown image, bare). Unlike a whole-field URL it cannot contain
# whitespace, or the words after it would be taken for base64.
_INLINE_DATA_URL = re.compile(r"data:[\w/.+-]{0,100};base64,[A-Za-z0-9+/_-]+=*", re.IGNORECASE)
_EMPTY_MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*\)")
# OpenRouter's 404 for a request whose modalities no endpoint of the model supports ("No
# endpoints found that support the requested output modalities: image, text").
_MODALITIES_404 = re.compile(r"support\w* the requested (?:output |input )?modalit", re.I)


@dataclass(frozen=True)
class ParsedAnswer:
    """What one completion answer holds, before any image is decoded."""

    image_urls: tuple[str, ...] = ()
    text: str = ""
    finish_reasons: tuple[str, ...] = field(default_factory=tuple)
    usage: Usage | None = None  # tokens and cost, when the answer reports them
    # The assistant message's `reasoning_details` (Gemini 3's thought signatures among them),
    # as OpenRouter returned them: sent back unchanged as history of a continued edit.
    reasoning_details: tuple[Mapping[str, Any], ...] = ()

    @property
    def refused(self) -> bool:
        return bool(REFUSAL_REASONS.intersection(self.finish_reasons))


def _image_part_url(part: object) -> str | None:
    """The URL of an `{"type": "image_url", "image_url": {"url": ...}}` part (or its variants)."""
    if not isinstance(part, Mapping):
        return None
    inner = part.get("image_url")
    url = inner.get("url") if isinstance(inner, Mapping) else inner
    if url is None and part.get("type") in ("image_url", "image"):
        url = part.get("url")
    return url.strip() if isinstance(url, str) and url.strip() else None


def _split_text(text: str, urls: list[str]) -> str:
    """Collect the data URLs inside free text; return the text without them."""
    urls.extend(match.group(0) for match in _INLINE_DATA_URL.finditer(text))
    if "data:" in text:
        text = _EMPTY_MARKDOWN_IMAGE.sub("", _INLINE_DATA_URL.sub("", text))
    return text.strip()


def _read_content(content: object, urls: list[str], texts: list[str]) -> None:
    """`content` as a string or as a list of text / image_url parts."""
    parts = [content] if isinstance(content, str) else content
    if not isinstance(parts, list):
        return
    for part in parts:
        if isinstance(part, str):
            text = part
        elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
            text = part["text"]
        else:
            url = _image_part_url(part)
            if url:
                urls.append(url)
            continue
        text = _split_text(text, urls)
        if text:
            texts.append(text)


def parse_answer(payload: Mapping[str, Any]) -> ParsedAnswer:
    """Pull image URLs, text and finish reasons out of a chat completion body.

    Images may sit in `message.images` (OpenRouter's shape), in `content` as image_url parts, or
    as data URLs inside the text (some gateways). Each image is listed once, in answer order.
    """
    messages: list[Mapping[str, Any]] = []
    reasons: list[str] = []
    for choice in payload.get("choices") or []:
        if not isinstance(choice, Mapping):
            continue
        for key in ("finish_reason", "native_finish_reason"):
            if isinstance(choice.get(key), str):
                reasons.append(choice[key].lower())
        message = choice.get("message")
        if isinstance(message, Mapping):
            messages.append(message)
    return parse_messages(messages, reasons, usage_of(payload))


def parse_messages(
    messages: Iterable[Mapping[str, Any]], reasons: Iterable[str], usage: Usage | None = None
) -> ParsedAnswer:
    """parse_answer for messages already taken out of their choices (or put together from the
    deltas of a stream); `reasons` are the finish reasons, lower-cased."""
    urls: list[str] = []
    texts: list[str] = []
    details: list[Mapping[str, Any]] = []
    for message in messages:
        images = message.get("images")
        for image in images if isinstance(images, list) else ():
            url = _image_part_url(image)
            if url:
                urls.append(url)
        _read_content(message.get("content"), urls, texts)
        details.extend(reasoning_details_of(message))
    unique = tuple(dict.fromkeys(urls))
    return ParsedAnswer(unique, "\n".join(texts), tuple(reasons), usage, tuple(details))


def reasoning_details_of(message: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The objects of a message's (or a delta's) `reasoning_details` list; anything else in
    the list is no detail of OpenRouter's and is left out."""
    found = message.get("reasoning_details")
    if not isinstance(found, list):
        return []
    return [detail for detail in found if isinstance(detail, Mapping)]


def _error_object(body: bytes) -> tuple[dict[str, Any], bool]:
    """The `error` object of a JSON body, and whether the body was JSON at all."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return {}, False
    error = data.get("error") if isinstance(data, dict) else None
    return (error if isinstance(error, dict) else {}), True


# `error.code` of a mid-stream error may be a word instead of a status (OpenRouter's docs show
# "server_error"); these are the words with a status of their own.
_CODE_WORDS = {
    "rate_limit_exceeded": 429,
    "rate_limited": 429,
    "insufficient_quota": 402,
    "insufficient_credits": 402,
    "invalid_api_key": 401,
    "unauthorized": 401,
    "timeout": 408,
    "server_error": 502,
    "bad_gateway": 502,
    "service_unavailable": 503,
}


def _status_of_code(code: object) -> int | None:
    if isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599:
        return code
    if isinstance(code, str):
        text = code.strip().lower()
        if text.isdigit():
            return _status_of_code(int(text))
        return _CODE_WORDS.get(text)
    return None


def classify_error(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    model: str,
    now: float | None = None,
    *,
    keys: Iterable[str] = (),
) -> UpstreamError:
    """Map an error answer (HTTP status or an `error` object in a 200) to our exception.

    `now` (wall-clock epoch seconds) resolves a Retry-After given as an HTTP date; `keys` are
    masked in the detail (see classify_error_object).
    """
    error, is_json = _error_object(body)
    return classify_error_object(status, error, headers, model, now, is_json=is_json, keys=keys)


def classify_error_object(
    status: int,
    error: Mapping[str, Any],
    headers: Mapping[str, str],
    model: str,
    now: float | None = None,
    *,
    is_json: bool = True,
    where: str = "HTTP",
    keys: Iterable[str] = (),
) -> UpstreamError:
    """classify_error for an `error` object already parsed (a stream chunk carries one).

    In a 200 answer the object's `code` stands for the status; `where` names the source in
    the detail ("HTTP", "stream"). The server's message goes into the detail with `keys`, and
    anything shaped like a key, masked: a server may echo the key it was sent, and the detail
    is logged and copied into other errors.
    """
    code = _status_of_code(error.get("code"))
    if status == 200 and code is not None:
        status = code
    raw = str(error.get("message") or "") if is_json else "non-JSON body"
    message = redact_keys(raw, keys)[:300]
    detail = f"{where} {status}: {message}"
    retry_after = parse_retry_after(headers, time.time() if now is None else now)
    if status == 401:
        return InvalidKeyError(detail, status)
    if status == 402:
        return OutOfCreditsError(detail, status)
    if status == 429:
        return RateLimitedError(detail, status, retry_after)
    if status == 403 and is_json:  # an HTML 403 comes from a proxy, not from moderation
        metadata = error.get("metadata") or {}
        reasons = metadata.get("reasons") if isinstance(metadata, dict) else None
        clean = tuple(str(r) for r in reasons) if isinstance(reasons, list) else ()
        return ModerationError(detail, clean, status)
    if status == 404 and _MODALITIES_404.search(message):
        return ModalitiesUnsupportedError(detail, model)
    if status == 404:
        return ModelUnavailableError(detail, model)
    if status == 408:
        return UpstreamTimeoutError(detail, status, retry_after)
    if status == 400 or (400 <= status < 500 and is_json):
        return BadRequestError(detail, status)
    return UpstreamUnavailableError(detail, status, retry_after)
