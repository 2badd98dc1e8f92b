"""OpenRouter text-to-picture calls: request building, error classification, answer decoding."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from astrbot.api import logger
from tenacity import RetryCallState

from .deadline import Deadline
from .errors import (
    BadRequestError,
    InvalidImageError,
    InvalidKeyError,
    ModelUnavailableError,
    ModerationError,
    NoApiKeyError,
    NoImageError,
    OutOfCreditsError,
    PicGenError,
    RateLimitedError,
    RefusalError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from .image_store import ImageStore, SavedImage
from .key_pool import KeyPool
from .keys import mask_key, redact_keys
from .retry_policy import (
    KeyOutcome,
    RetryPolicy,
    RetryRun,
    key_outcome,
    parse_retry_after,
    retry_after_of,
)
from .settings import Settings

ATTRIBUTION_HEADERS = {
    "HTTP-Referer": "https://github.com/miaoxworld/AstrBot_plugin_gemini2.5image-openrouter",
    "X-Title": "AstrBot Gemini Image Plugin",
}
REFUSAL_REASONS = frozenset(
    {"content_filter", "image_safety", "safety", "prohibited_content", "blocklist", "spii"}
)
_DATA_URL = re.compile(r"data:(image/[\w.+-]+);base64,([A-Za-z0-9+/=_\-\s]+)", re.IGNORECASE)
_URLSAFE_TO_STD = str.maketrans("-_", "+/")


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    aspect_ratio: str | None = None
    image_urls: tuple[str, ...] = ()  # reference images as data URLs, sent after the text


@dataclass(frozen=True)
class GenerationResult:
    images: tuple[SavedImage, ...]
    text: str
    model: str
    key_mask: str


@dataclass(frozen=True)
class ParsedAnswer:
    """What one completion answer holds, before any image is decoded."""

    image_urls: tuple[str, ...] = ()
    text: str = ""
    finish_reasons: tuple[str, ...] = field(default_factory=tuple)


# --- pure helpers -----------------------------------------------------------------------------


def decode_base64(text: str) -> bytes:
    """Decode base64 that may hold whitespace, lack padding or use the URL-safe alphabet."""
    compact = "".join(text.split()).translate(_URLSAFE_TO_STD).rstrip("=")
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidImageError(f"bad base64 image data: {exc}") from exc


def decode_data_url(url: str) -> bytes:
    match = _DATA_URL.fullmatch(url.strip())
    if not match:
        raise InvalidImageError("image is not a base64 data URL")
    return decode_base64(match.group(2))


def parse_answer(payload: Mapping[str, Any]) -> ParsedAnswer:
    """Pull image URLs, text and finish reasons out of a chat completion body."""
    urls: list[str] = []
    texts: list[str] = []
    reasons: list[str] = []
    for choice in payload.get("choices") or []:
        if not isinstance(choice, Mapping):
            continue
        for key in ("finish_reason", "native_finish_reason"):
            if isinstance(choice.get(key), str):
                reasons.append(choice[key].lower())
        message = choice.get("message") or {}
        for image in message.get("images") or []:
            url = (image.get("image_url") or {}).get("url") if isinstance(image, Mapping) else None
            if isinstance(url, str) and url:
                urls.append(url)
        content = message.get("content")
        if isinstance(content, str) and content.strip():
            texts.append(content.strip())
    return ParsedAnswer(tuple(urls), "\n".join(texts), tuple(reasons))


def _error_object(body: bytes) -> tuple[dict[str, Any], bool]:
    """The `error` object of a JSON body, and whether the body was JSON at all."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return {}, False
    error = data.get("error") if isinstance(data, dict) else None
    return (error if isinstance(error, dict) else {}), True


def classify_error(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    model: str,
    now: float | None = None,
) -> UpstreamError:
    """Map an error answer (HTTP status or an `error` object in a 200) to our exception.

    `now` (wall-clock epoch seconds) resolves a Retry-After given as an HTTP date.
    """
    error, is_json = _error_object(body)
    code = error.get("code")
    if status == 200 and isinstance(code, int):
        status = code
    message = str(error.get("message") or "")[:300] if is_json else "non-JSON body"
    detail = f"HTTP {status}: {message}"
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
    if status == 404:
        return ModelUnavailableError(detail, model)
    if status == 408:
        return UpstreamTimeoutError(detail, status, retry_after)
    if status == 400 or (400 <= status < 500 and is_json):
        return BadRequestError(detail, status)
    return UpstreamUnavailableError(detail, status, retry_after)


# --- the client ---------------------------------------------------------------------------------


class OpenRouterClient:
    """One generation = tries on the pool's keys, each try one POST; no state between calls."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: Settings,
        store: ImageStore,
        *,
        pool: KeyPool | None = None,
        policy: RetryPolicy | None = None,
    ):
        self._session = session
        self._settings = settings
        self._store = store
        self._policy = policy or RetryPolicy()
        self._pool = pool or KeyPool(settings.api_keys, clock=self._policy.clock)

    def build_payload(self, request: GenerationRequest) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": request.prompt}]
        content.extend({"type": "image_url", "image_url": {"url": u}} for u in request.image_urls)
        payload: dict[str, Any] = {
            "model": self._settings.model,
            "messages": [{"role": "user", "content": content}],
            "modalities": ["image", "text"],
        }
        if request.aspect_ratio:
            payload["image_config"] = {"aspect_ratio": request.aspect_ratio}
        return payload

    async def generate(
        self, request: GenerationRequest, deadline: Deadline | None = None
    ) -> GenerationResult:
        if not self._settings.api_keys:
            raise NoApiKeyError("no usable API key configured")
        if deadline is None:
            deadline = Deadline.start(
                self._settings.request_timeout_budget_seconds, self._policy.clock
            )
        payload = self.build_payload(request)
        run = self._policy.start_run(
            len(self._pool.keys), self._settings.max_retry_attempts, deadline
        )
        async for attempt in self._policy.retrying(run, before_sleep=self._log_wait):
            with attempt:
                key, answer = await self._attempt(run, payload)
        parsed = parse_answer(answer)
        if not parsed.image_urls:
            if REFUSAL_REASONS.intersection(parsed.finish_reasons):
                raise RefusalError(f"refused: finish reasons {parsed.finish_reasons}")
            raise NoImageError("answer held no image", parsed.text)
        images = [await asyncio.to_thread(self._decode_and_store, u) for u in parsed.image_urls]
        return GenerationResult(tuple(images), parsed.text, self._settings.model, mask_key(key))

    def _decode_and_store(self, url: str) -> SavedImage:
        return self._store.save(decode_data_url(url))

    async def _attempt(
        self, run: RetryRun, payload: dict[str, Any]
    ) -> tuple[str, Mapping[str, Any]]:
        """One try: lease a key, POST, tell the pool and the run how it went."""
        lease = await self._pool.acquire(
            run.deadline,
            exclude=run.exhausted_keys(),
            max_wait=self._policy.max_cooldown_wait,
            reserve=self._policy.min_attempt_seconds,
            prefer=run.preferred_key(),
        )
        run.began(lease.key)
        outcome: KeyOutcome | None = None
        retry_after: float | None = None
        try:
            answer = await self._post(lease.key, payload, run.deadline)
            outcome = KeyOutcome.SUCCESS
            return lease.key, answer
        except PicGenError as exc:
            outcome, retry_after = key_outcome(exc), retry_after_of(exc)
            action = run.failed(exc)
            logger.warning(
                f"gemini-pic-gen try {run.total}/{run.max_total} with key {lease.masked} failed: "
                f"{type(exc).__name__}: {redact_keys(exc.detail, self._pool.keys)} "
                f"-> {action.value}"
            )
            raise
        finally:
            self._pool.release(lease, outcome, retry_after)

    @staticmethod
    def _log_wait(state: RetryCallState) -> None:
        if state.upcoming_sleep > 0:
            logger.info(f"gemini-pic-gen: next try in {state.upcoming_sleep:.1f} s")

    async def _post(
        self, key: str, payload: dict[str, Any], deadline: Deadline
    ) -> Mapping[str, Any]:
        """POST once and return the answer body, or raise the classified error."""
        if deadline.expired():
            raise UpstreamTimeoutError("no time left for the request")
        headers = {"Authorization": f"Bearer {key}", **ATTRIBUTION_HEADERS}
        # The whole try may use what is left of the run's budget; connect and first byte each
        # get their own, shorter limit so a dead or hung upstream fails fast.
        timeout = aiohttp.ClientTimeout(
            total=deadline.remaining(),
            sock_connect=self._settings.connect_timeout_seconds,
            sock_read=self._settings.read_timeout_seconds,
        )
        try:
            async with self._session.post(
                self._settings.chat_completions_url, json=payload, headers=headers, timeout=timeout
            ) as response:
                body = await response.read()
                status, response_headers = response.status, response.headers
        except asyncio.TimeoutError as exc:
            raise UpstreamTimeoutError(f"request timed out ({type(exc).__name__})") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailableError(f"connection failed: {type(exc).__name__}") from exc
        if status != 200:
            raise classify_error(
                status, body, response_headers, self._settings.model, self._policy.clock.wall()
            )
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise UpstreamUnavailableError("answer is not JSON", status) from exc
        if not isinstance(data, dict):
            raise UpstreamUnavailableError("answer is not a JSON object", status)
        if isinstance(data.get("error"), dict):
            raise classify_error(
                status, body, response_headers, self._settings.model, self._policy.clock.wall()
            )
        return data
