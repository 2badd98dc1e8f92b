"""The OpenRouter client: one generation as tries on the key pool's keys, each try one POST whose
answer is streamed in, its images decoded, validated and stored."""

from __future__ import annotations

import asyncio
import filecmp
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from astrbot.api import logger
from tenacity import RetryCallState

from .core.clock import Deadline
from .core.errors import (
    DownloadError,
    InvalidImageError,
    NoImageError,
    PicGenError,
    RefusalError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from .core.keys import mask_key, redact_keys
from .core.settings import Settings
from .core.workers import CpuPool
from .imaging.downloads import describe_url, fetch_bytes, is_http_url
from .imaging.store import ImageStore, SavedImage
from .openrouter.answer_stream import AnswerReader
from .openrouter.answers import ParsedAnswer, classify_error, parse_answer
from .openrouter.key_pool import KeyPool
from .openrouter.retry_policy import (
    KeyOutcome,
    RetryPolicy,
    RetryRun,
    key_outcome,
    retry_after_of,
)
from .openrouter.usage import Usage

T = TypeVar("T")
ATTRIBUTION_HEADERS = {
    "HTTP-Referer": "https://github.com/miaoxworld/AstrBot_plugin_gemini2.5image-openrouter",
    "X-Title": "AstrBot Gemini Image Plugin",
}
# A 200 answer is read in pieces of this size, each decoded on the loop in about 0.3 ms (bigger
# pieces cost less per byte but stall the loop longer). Decoded bytes go to a worker in batches
# of at least _WRITE_BATCH; up to _WRITE_BACKLOG may wait while the worker is busy (it often is:
# it needs the GIL the loop holds while decoding), which bounds the memory one answer holds.
_READ_PIECE = 128 * 1024
_WRITE_BATCH = 256 * 1024
_WRITE_BACKLOG = 1024 * 1024


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    aspect_ratio: str | None = None
    # Reference images as data URLs, in the order they are sent.
    images: tuple[str, ...] = ()
    # "1K", "2K" or "4K"; None = the model's default (see openrouter/capabilities.py).
    image_size: str | None = None


@dataclass(frozen=True)
class GenerationResult:
    images: tuple[SavedImage, ...]
    text: str
    model: str
    key_mask: str
    # Images of the answer that failed validation and were dropped (the rest are delivered).
    discarded: int = 0
    usage: Usage | None = None  # what the service reported the generation cost


@dataclass
class Answer:
    """A successful completion body: what it holds, and the reader holding the images its big
    base64 payloads were streamed into (the parsed URLs carry tokens in their place)."""

    parsed: ParsedAnswer
    streamed: AnswerReader


def _encode_json(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def _finish_answer(reader: AnswerReader, skeleton: bytes) -> tuple[Any, ParsedAnswer | None]:
    """Write the last decoded bytes; parse the skeleton. Blocking.

    (JSON or None if it is not JSON, what the answer holds or None if it is not an answer).
    """
    reader.write(reader.take_unwritten())
    try:
        data = json.loads(skeleton)
    except (UnicodeDecodeError, ValueError):
        return None, None
    if not isinstance(data, dict) or isinstance(data.get("error"), dict):
        return data, None
    return data, parse_answer(data)


def _without_duplicates(images: tuple[SavedImage, ...]) -> tuple[SavedImage, ...]:
    """Drop (and delete) images whose bytes repeat an earlier one. Blocking.

    The same picture can be both in `images` and in the text; short URLs are deduplicated as
    text already, streamed ones (each with its own token) only here. Sizes are compared first,
    so the usual single image costs nothing.
    """
    kept: list[SavedImage] = []
    for image in images:
        twin = any(
            k.size == image.size and filecmp.cmp(k.path, image.path, shallow=False) for k in kept
        )
        if twin:
            image.path.unlink(missing_ok=True)
        else:
            kept.append(image)
    return tuple(kept)


# --- the client ---------------------------------------------------------------------------------


class OpenRouterClient:
    """One generation = tries on the pool's keys, each try one POST; no state between calls."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: Settings,
        store: ImageStore,
        *,
        pool: KeyPool,
        policy: RetryPolicy,
        cpu: CpuPool,
    ):
        self._session = session
        self._settings = settings
        self._store = store
        self._policy = policy
        self._pool = pool
        self._cpu = cpu

    def build_payload(self, request: GenerationRequest) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": request.prompt}]
        content.extend({"type": "image_url", "image_url": {"url": url}} for url in request.images)
        payload: dict[str, Any] = {
            "model": self._settings.model,
            "messages": [{"role": "user", "content": content}],
            "modalities": ["image", "text"],
        }
        image_config = {
            key: value
            for key, value in (
                ("aspect_ratio", request.aspect_ratio),
                ("image_size", request.image_size),
            )
            if value
        }
        if image_config:
            payload["image_config"] = image_config
        return payload

    async def generate(self, request: GenerationRequest, deadline: Deadline) -> GenerationResult:
        # Serialised once for every try; off the loop when reference images make it megabytes.
        body = self.build_payload(request)
        payload = await self._offload(_encode_json, body) if request.images else _encode_json(body)
        run = self._policy.start_run(
            len(self._pool.keys), self._settings.max_retry_attempts, deadline
        )
        async for attempt in self._policy.retrying(run, before_sleep=self._log_wait):
            with attempt:
                key, answer = await self._attempt(run, payload)
        return await self.result_from(answer, mask_key(key))

    async def result_from(self, answer: Answer, key_mask: str) -> GenerationResult:
        """Decode, validate and store every image of a successful answer.

        Images that fail validation are dropped and counted; only when none is left does the
        first failure reach the caller. A refusal or a text-only answer raises.
        """
        parsed = answer.parsed
        try:
            if not parsed.image_urls:
                if parsed.refused:
                    raise RefusalError(f"refused: finish reasons {parsed.finish_reasons}")
                raise NoImageError("answer held no image", parsed.text)
            outcomes = await asyncio.gather(
                *(self._decode_and_store(url, answer.streamed) for url in parsed.image_urls),
                return_exceptions=True,
            )
        finally:
            answer.streamed.discard()  # payloads no URL of the answer pointed at
        images = tuple(o for o in outcomes if isinstance(o, SavedImage))
        failures = [o for o in outcomes if not isinstance(o, SavedImage)]
        for failure in failures:
            if not isinstance(failure, (InvalidImageError, DownloadError)):
                raise failure  # a bug or a cancellation, not a bad image
        if not images:
            raise failures[0]
        if len({image.size for image in images}) < len(images):
            images = await self._offload(_without_duplicates, images)
        return GenerationResult(
            images,
            parsed.text,
            self._settings.model,
            key_mask,
            discarded=len(failures),
            usage=parsed.usage,
        )

    async def _decode_and_store(self, url: str, streamed: AnswerReader) -> SavedImage:
        try:
            if is_http_url(url):
                data = await fetch_bytes(
                    self._session,
                    url,
                    max_bytes=self._settings.download_max_bytes,
                    timeout=self._settings.download_timeout,
                )
                return await self._offload(self._store.save, data)
            taken = streamed.take(url)
            if taken is not None:
                image, rest = taken
                return await self._offload(image.complete, rest)
            return await self._offload(self._store.save_data_url, url)
        except (InvalidImageError, DownloadError) as exc:
            where = describe_url(url) if is_http_url(url) else "inline image"
            logger.warning(f"answer image ({where}) dropped: {exc.detail}")
            raise

    async def _offload(self, fn: Callable[..., T], /, *args: Any) -> T:
        """Blocking work (base64, Pillow, file writes) off the event loop."""
        return await self._cpu.run(fn, *args)

    async def _attempt(self, run: RetryRun, payload: bytes) -> tuple[str, Answer]:
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

    async def _post(self, key: str, payload: bytes, deadline: Deadline) -> Answer:
        """POST once and return the answer, or raise the classified error."""
        if deadline.expired():
            raise UpstreamTimeoutError("no time left for the request")
        headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            **ATTRIBUTION_HEADERS,
        }
        # The whole try may use what is left of the run's budget; connect and first byte each
        # get their own, shorter limit so a dead or hung upstream fails fast.
        timeout = aiohttp.ClientTimeout(
            total=deadline.remaining(),
            sock_connect=self._settings.connect_timeout_seconds,
            sock_read=self._settings.read_timeout_seconds,
        )
        reader = AnswerReader(self._store)
        try:
            try:
                async with self._session.post(
                    self._settings.chat_completions_url,
                    data=payload,
                    headers=headers,
                    timeout=timeout,
                ) as response:
                    status, response_headers = response.status, response.headers
                    if status == 200:
                        body, data, parsed = await self._read_answer(response, reader)
                    else:
                        body, data, parsed = await response.read(), None, None
            except asyncio.TimeoutError as exc:
                raise UpstreamTimeoutError(f"request timed out ({type(exc).__name__})") from exc
            except aiohttp.ClientError as exc:
                raise UpstreamUnavailableError(f"connection failed: {type(exc).__name__}") from exc
            if status != 200:
                raise classify_error(
                    status, body, response_headers, self._settings.model, self._policy.clock.wall()
                )
            if data is None:
                raise UpstreamUnavailableError("answer is not JSON", status)
            if not isinstance(data, dict):
                raise UpstreamUnavailableError("answer is not a JSON object", status)
            if parsed is None:  # an `error` object instead of choices
                raise classify_error(
                    status, body, response_headers, self._settings.model, self._policy.clock.wall()
                )
        except BaseException:
            reader.discard()
            raise
        return Answer(parsed, reader)

    async def _read_answer(
        self, response: aiohttp.ClientResponse, reader: AnswerReader
    ) -> tuple[bytes, Any, ParsedAnswer | None]:
        """Stream the body through `reader`; the skeleton and what _finish_answer makes of it.

        Each piece is scanned and decoded on the loop as it arrives (see answer_stream); the
        decoded bytes go to a worker in batches, one batch written while the next is decoded.
        """
        # At most one worker call per answer at a time: writes stay in order. Awaited through
        # shield() and waited for on the way out: a failure or a cancellation must never
        # discard files a worker is still writing.
        job: asyncio.Future[Any] | None = None
        try:
            async for piece in response.content.iter_chunked(_READ_PIECE):
                reader.feed(piece)
                # aiohttp hands out buffered pieces without suspending: without this, one
                # answer would be decoded in one go while every other request waits.
                await asyncio.sleep(0)
                if reader.unwritten < _WRITE_BATCH:
                    continue
                if job is not None and not job.done():
                    if reader.unwritten < _WRITE_BACKLOG:
                        continue  # keep decoding; the worker takes it all once it is free
                    await asyncio.shield(job)  # a slow disk slows the reading down
                job = asyncio.ensure_future(self._offload(reader.write, reader.take_unwritten()))
            if job is not None:
                await asyncio.shield(job)
            skeleton = reader.finish()
            job = asyncio.ensure_future(self._offload(_finish_answer, reader, skeleton))
            data, parsed = await asyncio.shield(job)
            return skeleton, data, parsed
        finally:
            if job is not None and not job.done():
                await asyncio.wait([job])
