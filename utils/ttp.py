"""OpenRouter text-to-picture calls: request building, error classification, answer decoding."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from astrbot.api import logger
from tenacity import RetryCallState

from .deadline import Deadline
from .downloads import describe_url, fetch_bytes, is_http_url
from .errors import (
    BadRequestError,
    DownloadError,
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
from .workers import CpuPool

T = TypeVar("T")
ATTRIBUTION_HEADERS = {
    "HTTP-Referer": "https://github.com/miaoxworld/AstrBot_plugin_gemini2.5image-openrouter",
    "X-Title": "AstrBot Gemini Image Plugin",
}
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


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    aspect_ratio: str | None = None
    # Reference images as data URLs, in the order they are sent.
    images: tuple[str, ...] = ()


@dataclass(frozen=True)
class GenerationResult:
    images: tuple[SavedImage, ...]
    text: str
    model: str
    key_mask: str
    # Images of the answer that failed validation and were dropped (the rest are delivered).
    discarded: int = 0


@dataclass(frozen=True)
class ParsedAnswer:
    """What one completion answer holds, before any image is decoded."""

    image_urls: tuple[str, ...] = ()
    text: str = ""
    finish_reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def refused(self) -> bool:
        return bool(REFUSAL_REASONS.intersection(self.finish_reasons))


# --- pure helpers -----------------------------------------------------------------------------


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
    urls: list[str] = []
    texts: list[str] = []
    reasons: list[str] = []
    for choice in payload.get("choices") or []:
        if not isinstance(choice, Mapping):
            continue
        for key in ("finish_reason", "native_finish_reason"):
            if isinstance(choice.get(key), str):
                reasons.append(choice[key].lower())
        message = choice.get("message")
        if not isinstance(message, Mapping):
            continue
        images = message.get("images")
        for image in images if isinstance(images, list) else ():
            url = _image_part_url(image)
            if url:
                urls.append(url)
        _read_content(message.get("content"), urls, texts)
    unique = tuple(dict.fromkeys(urls))
    return ParsedAnswer(unique, "\n".join(texts), tuple(reasons))


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
        cpu: CpuPool | None = None,
    ):
        self._session = session
        self._settings = settings
        self._store = store
        self._policy = policy or RetryPolicy()
        self._pool = pool or KeyPool(settings.api_keys, clock=self._policy.clock)
        self._cpu = cpu

    def build_payload(self, request: GenerationRequest) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": request.prompt}]
        content.extend({"type": "image_url", "image_url": {"url": url}} for url in request.images)
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
        return await self.result_from(answer, mask_key(key))

    async def result_from(self, answer: Mapping[str, Any], key_mask: str) -> GenerationResult:
        """Decode, validate and store every image of a successful answer.

        Images that fail validation are dropped and counted; only when none is left does the
        first failure reach the caller. A refusal or a text-only answer raises.
        """
        parsed = await self._offload(parse_answer, answer)
        if not parsed.image_urls:
            if parsed.refused:
                raise RefusalError(f"refused: finish reasons {parsed.finish_reasons}")
            raise NoImageError("answer held no image", parsed.text)
        outcomes = await asyncio.gather(
            *(self._decode_and_store(url) for url in parsed.image_urls), return_exceptions=True
        )
        images = tuple(o for o in outcomes if isinstance(o, SavedImage))
        failures = [o for o in outcomes if not isinstance(o, SavedImage)]
        for failure in failures:
            if not isinstance(failure, (InvalidImageError, DownloadError)):
                raise failure  # a bug or a cancellation, not a bad image
        if not images:
            raise failures[0]
        return GenerationResult(
            images, parsed.text, self._settings.model, key_mask, discarded=len(failures)
        )

    async def _decode_and_store(self, url: str) -> SavedImage:
        try:
            if is_http_url(url):
                data = await fetch_bytes(
                    self._session,
                    url,
                    max_bytes=self._settings.download_max_bytes,
                    timeout=self._settings.download_timeout,
                )
                return await self._offload(self._store.save, data)
            return await self._offload(self._store.save_data_url, url)
        except (InvalidImageError, DownloadError) as exc:
            where = describe_url(url) if is_http_url(url) else "inline image"
            logger.warning(f"answer image ({where}) dropped: {exc.detail}")
            raise

    async def _offload(self, fn: Callable[..., T], /, *args: Any) -> T:
        """Blocking work (base64, Pillow, file writes) off the event loop."""
        if self._cpu is not None:
            return await self._cpu.run(fn, *args)
        return await asyncio.to_thread(fn, *args)

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
