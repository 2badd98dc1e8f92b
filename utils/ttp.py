"""The OpenRouter client: one generation as tries on the key pool's keys, each try one POST whose
answer is streamed in, its images decoded, validated and stored.

Two transports, chosen per model (GenerationRequest.api, from openrouter/capabilities.route_for):
chat completions (POST /v1/chat/completions, streamed, described below) and the Image API
(POST /v1/images, openrouter/images_api.py: one plain JSON answer whose `b64_json` pictures are
decoded as they arrive, like a chat answer's data URLs). Both share everything else: the key
pool, the retry policy, the run's deadline, error classification, decoding and storing.

The request asks for a stream (`"stream": true`): OpenRouter then answers at once and keeps the
connection alive with SSE comments while the model works, so a silence longer than the idle
limit (`read_timeout_seconds`) means a dead connection, never a slow model. A gateway that
answers plain JSON instead is read the same way as before.

When is another try allowed? Only when the first one cannot have been billed:
- an error status, or an error chunk in the stream: that request is over and OpenRouter bills
  no answer that ends in an error (its zero completion insurance); the retry policy decides;
- a connection-level fault before any answer (refused, reset, connect timeout): nothing was
  answered; tried again on the same key, never key after key (the path failed, not the key);
- no answer headers within the first-byte deadline (`first_byte_timeout_seconds`, streamed
  requests only): OpenRouter answers a stream with headers at once, so the path is dead; the
  run ends (a relay that answers plain JSON late may be working on it and would bill a second
  try), and so it does when the run's deadline comes first;
- an answer that had started (a 200) and was cut, went silent past the idle limit, outlived
  the deadline, grew past its cap or could not be read (an event or body that is not JSON,
  finish_reason "error" without an error object): aborted. Closing the connection stops
  billing only on providers that support it, and Google's do not: the run ends, and the
  error carries a `Charge` (outcome ABORTED, the generation id from X-Generation-Id or the
  first chunk) so that its cost is recorded. Only an `error` object in the answer is the
  service ending the request itself: classified like its status, as above;
- a refusal, a text-only answer, pictures that all fail validation: billed answers; the run
  ends and the error carries their `Charge` (with the usage the answer reported).
A request cancelled while its answer comes in leaves that answer in its `AnswerWatch`, for the
caller to record.
"""

from __future__ import annotations

import asyncio
import filecmp
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import aiohttp
from astrbot.api import logger
from tenacity import RetryCallState

from .core.charges import Charge, Outcome, Usage
from .core.clock import Deadline
from .core.errors import (
    ConnectionLostError,
    DeadlineExceededError,
    DownloadError,
    InvalidImageError,
    NoAnswerError,
    NoImageError,
    PicGenError,
    RefusalError,
    UnreachableError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from .core.settings import Settings
from .core.workers import CpuPool
from .imaging.downloads import describe_url, fetch_bytes, is_http_url
from .imaging.store import ImageStore, SavedImage
from .openrouter import images_api
from .openrouter.answer_stream import MARKER, AnswerReader
from .openrouter.answers import (
    ParsedAnswer,
    classify_error,
    classify_error_object,
    parse_answer,
)
from .openrouter.capabilities import CHAT_API, IMAGES_API, TEXT_AND_IMAGE, image_config
from .openrouter.key_pool import KeyLease, KeyPool
from .openrouter.retry_policy import (
    KeyOutcome,
    RetryPolicy,
    RetryRun,
    key_outcome,
    retry_after_of,
)
from .openrouter.sse import DONE, SseFramer, StreamAssembler, looks_like_event_stream
from .openrouter.turns import PreviousTurn, history_messages

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
# Caps on what is held in memory besides the images: an error body, and the JSON left of an
# answer (or of one stream event) once its big base64 payloads went to temp files.
ERROR_BODY_CAP = 64 * 1024
SKELETON_CAP = 4 * 1024 * 1024
# After a stream's finish reason only its usage chunk and [DONE] are to come, at once: silence
# this long (or the idle limit, if shorter) ends a finished answer, from a gateway that sends
# neither [DONE] nor the end of the body.
_AFTER_FINISH_WAIT = 5.0
# A stream event this small is parsed on the loop; bigger ones (short images kept inline) in
# a worker.
_PARSE_ON_LOOP = 64 * 1024


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    aspect_ratio: str | None = None
    # Reference images as data URLs, in the order they are sent.
    images: tuple[str, ...] = ()
    # "1K", "2K" or "4K"; None = the model's default (see openrouter/capabilities.py).
    image_size: str | None = None
    # Where the model is asked (capabilities.CHAT_API or IMAGES_API), and for what.
    api: str = CHAT_API
    modalities: tuple[str, ...] = TEXT_AND_IMAGE  # chat completions' `modalities`
    n: int = 1  # the Image API's `n`
    # A continued edit on a model that keeps turns: the turn it goes on from, sent as the
    # conversation's history before this request's message (chat completions only).
    history: PreviousTurn | None = None


@dataclass(frozen=True)
class Transport:
    """Where one generation is sent and how its answer reads."""

    name: str  # for the log
    url: str
    parse: Callable[[Mapping[str, Any]], ParsedAnswer]
    marker: re.Pattern[bytes]  # where a picture's base64 starts in the answer
    streams: bool  # asked for an event stream


@dataclass(frozen=True)
class GenerationResult:
    images: tuple[SavedImage, ...]
    text: str
    model: str
    key_mask: str
    # Images of the answer that failed validation and were dropped (the rest are delivered).
    discarded: int = 0
    usage: Usage | None = None  # what the service reported the generation cost
    # OpenRouter's id of the generation (X-Generation-Id, else the answer's `id`).
    generation_id: str = ""
    # The answer's reasoning details as OpenRouter returned them (see openrouter/turns.py).
    reasoning_details: tuple[Mapping[str, Any], ...] = ()

    def charge(self) -> Charge:
        """The answer as a billed one (outcome PICTURE)."""
        return Charge(Outcome.PICTURE, self.model, self.key_mask, self.generation_id, self.usage)


@dataclass
class AnswerWatch:
    """The answer coming in right now (a 200 whose end has not come), as the charge it stands
    for if it is cut; set and cleared by the client. A request cancelled meanwhile finds it
    here: the only account of an answer that may be billed and will never end."""

    open: Charge | None = None

    def learned_id(self, generation_id: str) -> None:
        """The open answer's generation id, once the stream names it."""
        if self.open is not None and generation_id and not self.open.generation_id:
            self.open = replace(self.open, generation_id=generation_id)


@dataclass
class Answer:
    """A successful completion body: what it holds, and the reader holding the images its big
    base64 payloads were streamed into (the parsed URLs carry tokens in their place)."""

    parsed: ParsedAnswer
    streamed: AnswerReader
    generation_id: str = ""


class _ErrorAnswer(Exception):
    """The error an `error` object in a 200 answer stands for, carried out of the reading of
    that answer: the service ended the request with an error and bills nothing for it, so the
    error keeps its own classification (and may be retried), unlike every other failure of an
    answer that had started."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(error.detail)
        self.error = error


class _Headers(dict):  # type: ignore[type-arg]
    """Request headers whose repr hides the key: loguru prints the values of local variables
    in the tracebacks it logs."""

    def __repr__(self) -> str:
        return "{headers with the API key}"


def _request_headers(lease: KeyLease) -> _Headers:
    return _Headers(
        {
            "Authorization": f"Bearer {lease.key}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream, application/json",
            **ATTRIBUTION_HEADERS,
        }
    )


def _generation_id(headers: Mapping[str, str], fallback: str) -> str:
    return (headers.get("X-Generation-Id") or fallback or "")[:200]


def _encode_json(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def _finish_answer(
    reader: AnswerReader, skeleton: bytes, parse: Callable[[Mapping[str, Any]], ParsedAnswer]
) -> tuple[Any, ParsedAnswer | None]:
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
    return data, parse(data)


def _parse_event(skeleton: bytes) -> Any:
    """One stream event's JSON; raises ValueError if it is not JSON."""
    return json.loads(skeleton)


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


def _discard_soon(reader: AnswerReader) -> None:
    """Drop an answer's temp files for a request being cancelled, which must not wait: handed
    to a worker at once (asyncio's executor, which the loop waits for when it shuts down; the
    CpuPool's queue is reached only through a coroutine a closing loop may never start)."""
    if reader.holds_images:
        job = asyncio.get_running_loop().run_in_executor(None, reader.discard)
        job.add_done_callback(_log_failed_discard)


def _log_failed_discard(job: asyncio.Future[None]) -> None:
    if not job.cancelled() and job.exception() is not None:
        logger.warning(f"gemini-pic-gen: temp files of an answer not removed: {job.exception()!r}")


def out_of_time(deadline: Deadline, doing: str) -> DeadlineExceededError:
    """The run's budget ran out with a request still open: no time for another try."""
    last = UpstreamTimeoutError(f"no complete answer within the time budget ({doing})")
    return DeadlineExceededError(
        f"time budget of {deadline.budget:.0f} s ran out {doing}", deadline.budget, last
    )


def _check_skeleton(reader: AnswerReader) -> None:
    if reader.skeleton_size > SKELETON_CAP:
        raise UpstreamUnavailableError(
            f"answer holds more than {SKELETON_CAP} bytes besides its images", 200
        )


class _BodyReader:
    """The pieces of an answer body, each awaited under the idle limit or the deadline."""

    def __init__(self, content: aiohttp.StreamReader, deadline: Deadline, idle: float) -> None:
        self._content = content
        self._deadline = deadline
        self._idle = idle

    async def next(self, *, idle: bool, finished: bool = False) -> bytes:
        """The next piece, b"" at the end. `idle`: silence longer than the idle limit means
        the connection is dead; otherwise only the deadline limits the wait. `finished`: the
        answer is complete, what may follow adds nothing needed; a short silence (or the
        deadline) is its end."""
        remaining = self._deadline.remaining()
        limit = min(self._idle, remaining) if idle else remaining
        if finished:
            limit = min(limit, _AFTER_FINISH_WAIT)
        try:
            return await asyncio.wait_for(self._content.read(_READ_PIECE), limit)
        except asyncio.TimeoutError:
            if finished:
                return b""
            # aiohttp's total limit is the deadline too: whichever fired, the deadline decides.
            if limit >= remaining or self._deadline.remaining() <= 0.05:
                raise out_of_time(self._deadline, "while the answer came in") from None
            raise ConnectionLostError(
                f"no data for {self._idle:g} s, not even a keep-alive: connection presumed dead"
            ) from None


async def _read_error_body(body: _BodyReader) -> bytes:
    """At most ERROR_BODY_CAP bytes of an error answer (a proxy's page may be of any size, or
    never end); a body that stalls is classified by what came, its status says the most."""
    buffer = bytearray()
    try:
        while len(buffer) < ERROR_BODY_CAP:
            piece = await body.next(idle=True)
            if not piece:
                break
            buffer += piece
    except ConnectionLostError:
        pass
    return bytes(buffer[:ERROR_BODY_CAP])


class _Writer:
    """Hands the decoded bytes of an answer to a worker in batches, one batch written while
    the next is decoded.

    At most one worker call per answer at a time: writes stay in order. Awaited through
    shield() and waited for on the way out (settle()): a failure or a cancellation must never
    discard files a worker is still writing.
    """

    def __init__(self, cpu: CpuPool) -> None:
        self._cpu = cpu
        self._job: asyncio.Future[Any] | None = None

    async def after_piece(self, reader: AnswerReader) -> None:
        # aiohttp hands out buffered pieces without suspending: without this, one answer
        # would be decoded in one go while every other request waits.
        await asyncio.sleep(0)
        if reader.unwritten < _WRITE_BATCH:
            return
        if self._job is not None and not self._job.done():
            if reader.unwritten < _WRITE_BACKLOG:
                return  # keep decoding; the worker takes it all once it is free
            await asyncio.shield(self._job)  # a slow disk slows the reading down
        self._job = asyncio.ensure_future(self._cpu.run(reader.write, reader.take_unwritten()))

    async def drain(self) -> None:
        if self._job is not None:
            await asyncio.shield(self._job)

    async def final(self, fn: Callable[..., T], /, *args: Any) -> T:
        job = asyncio.ensure_future(self._cpu.run(fn, *args))
        self._job = job
        return await asyncio.shield(job)

    async def settle(self) -> None:
        if self._job is not None and not self._job.done():
            await asyncio.wait([self._job])


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
        self._watch = AnswerWatch()

    def transport(self, request: GenerationRequest) -> Transport:
        if request.api == IMAGES_API:
            return Transport(
                "Image API",
                self._settings.images_url,
                images_api.parse_answer,
                images_api.ANSWER_MARKER,
                streams=False,
            )
        url = self._settings.chat_completions_url
        return Transport("chat completions", url, parse_answer, MARKER, streams=True)

    def build_payload(self, request: GenerationRequest) -> dict[str, Any]:
        if request.api == IMAGES_API:
            return images_api.request_body(
                self._settings.model,
                request.prompt,
                request.images,
                request.image_size,
                request.aspect_ratio,
                request.n,
            )
        content: list[dict[str, Any]] = [{"type": "text", "text": request.prompt}]
        content.extend({"type": "image_url", "image_url": {"url": url}} for url in request.images)
        history = history_messages(request.history) if request.history is not None else []
        payload: dict[str, Any] = {
            "model": self._settings.model,
            "messages": [*history, {"role": "user", "content": content}],
            # ["image"] alone for a model that outputs no text (see capabilities.route_for).
            "modalities": list(request.modalities),
            # Streamed: the connection stays alive while the model works (see the module doc).
            "stream": True,
        }
        config = image_config(request.aspect_ratio, request.image_size)
        if config:
            payload["image_config"] = config
        return payload

    async def generate(
        self, request: GenerationRequest, deadline: Deadline, watch: AnswerWatch | None = None
    ) -> GenerationResult:
        """Tries until an answer with a picture, or the failure that ends the run (a billed
        answer's failure carries its `charge`). `watch` shows the answer coming in."""
        self._watch = watch if watch is not None else AnswerWatch()
        transport = self.transport(request)
        # Serialised once for every try; off the loop when reference images make it megabytes.
        body = self.build_payload(request)
        big = request.images or request.history is not None
        payload = await self._offload(_encode_json, body) if big else _encode_json(body)
        # Keys already known to be invalid are not counted: the run ends when the others are
        # used up, with their failure.
        run = self._policy.start_run(
            self._pool.usable_count(), self._settings.max_retry_attempts, deadline
        )
        try:
            async for attempt in self._policy.retrying(run, before_sleep=self._log_wait):
                with attempt:
                    lease, answer = await self._attempt(run, payload, transport)
        except PicGenError as exc:
            logger.warning(
                f"gemini-pic-gen: generation through {transport.name} failed after {run.total} "
                f"try(s) ({type(exc).__name__}); keys: {self._pool.describe()}"
            )
            raise
        # Complete and billed: until its pictures are stored, a cancellation loses them.
        self._watch.open = Charge(
            Outcome.ABORTED,
            self._settings.model,
            lease.masked,
            answer.generation_id,
            answer.parsed.usage,
        )
        try:
            result = await self.result_from(answer, lease.masked)
        except PicGenError:
            self._watch.open = None  # the failure carries its charge
            raise
        self._watch.open = None
        return result

    async def result_from(self, answer: Answer, key_mask: str) -> GenerationResult:
        """Decode, validate and store every image of a successful answer.

        Images that fail validation are dropped and counted; only when none is left does the
        first failure reach the caller. A refusal or a text-only answer raises.
        """
        parsed = answer.parsed

        def billed(outcome: str) -> Charge:
            model = self._settings.model
            return Charge(outcome, model, key_mask, answer.generation_id, parsed.usage)

        try:
            if not parsed.image_urls:
                failure: PicGenError
                if parsed.refused:
                    failure = RefusalError(f"refused: finish reasons {parsed.finish_reasons}")
                    failure.charge = billed(Outcome.REFUSAL)
                else:
                    failure = NoImageError("answer held no image", parsed.text)
                    failure.charge = billed(Outcome.TEXT_ONLY)
                raise failure
            outcomes = await asyncio.gather(
                *(self._decode_and_store(url, answer.streamed) for url in parsed.image_urls),
                return_exceptions=True,
            )
        except asyncio.CancelledError:
            _discard_soon(answer.streamed)
            raise
        except BaseException:
            await self._discard(answer.streamed)
            raise
        await self._discard(answer.streamed)  # payloads no URL of the answer pointed at
        images = tuple(o for o in outcomes if isinstance(o, SavedImage))
        failures = [o for o in outcomes if not isinstance(o, SavedImage)]
        for problem in failures:
            if not isinstance(problem, (InvalidImageError, DownloadError)):
                raise problem  # a bug or a cancellation, not a bad image
        if not images:
            first = failures[0]
            assert isinstance(first, PicGenError)
            first.charge = billed(Outcome.INVALID_PICTURE)
            raise first
        if len({image.size for image in images}) < len(images):
            images = await self._offload(_without_duplicates, images)
        return GenerationResult(
            images,
            parsed.text,
            self._settings.model,
            key_mask,
            discarded=len(failures),
            usage=parsed.usage,
            generation_id=answer.generation_id,
            reasoning_details=parsed.reasoning_details,
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

    async def _discard(self, reader: AnswerReader) -> None:
        """Drop the temp files (tens of MB each) of the images no URL of the answer took, in a
        worker; shielded: a cancellation meanwhile must not leave them behind."""
        if reader.holds_images:
            await asyncio.shield(self._offload(reader.discard))

    async def _attempt(
        self, run: RetryRun, payload: bytes, transport: Transport
    ) -> tuple[KeyLease, Answer]:
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
            # The lease, not its key, goes down the stack: tracebacks show what each line
            # names, and a lease shows only its masked key.
            answer = await self._post(lease, payload, run.deadline, transport)
            outcome = KeyOutcome.SUCCESS
            return lease, answer
        except PicGenError as exc:
            outcome, retry_after = key_outcome(exc), retry_after_of(exc)
            action = run.failed(exc)
            # A server's message in the detail has its keys masked (classify_error_object).
            logger.warning(
                f"gemini-pic-gen try {run.total}/{run.max_total} with key {lease.masked} failed: "
                f"{type(exc).__name__}: {exc.detail} -> {action.value}"
            )
            raise
        finally:
            self._pool.release(lease, outcome, retry_after)

    @staticmethod
    def _log_wait(state: RetryCallState) -> None:
        if state.upcoming_sleep > 0:
            logger.info(f"gemini-pic-gen: next try in {state.upcoming_sleep:.1f} s")

    async def _post(
        self, lease: KeyLease, payload: bytes, deadline: Deadline, transport: Transport
    ) -> Answer:
        """POST once and return the answer, or raise the classified error. An answer that had
        started (a 200) and failed raises with its charge (outcome ABORTED): cut, silent, too
        big, garbled, it may be billed and is not tried again. Only an `error` object in the
        answer keeps its classification: the service ended that request itself."""
        if deadline.expired():
            raise UpstreamTimeoutError("no time left for the request")
        reader = AnswerReader(self._store, transport.marker)
        try:
            response = await self._send(lease, payload, deadline, transport)
            try:
                async with response:
                    if response.status != 200:
                        idle = self._settings.read_timeout_seconds
                        body = await _read_error_body(_BodyReader(response.content, deadline, idle))
                        raise classify_error(
                            response.status,
                            body,
                            response.headers,
                            self._settings.model,
                            self._policy.clock.wall(),
                            keys=self._pool.keys,
                        )
                    self._watch.open = Charge(
                        Outcome.ABORTED,
                        self._settings.model,
                        lease.masked,
                        _generation_id(response.headers, ""),
                    )
                    answer = await self._read_answer(response, reader, deadline, transport)
                    self._watch.open = None
                    return answer
            except asyncio.TimeoutError as exc:
                # aiohttp's total limit: the run's deadline, with the request still running.
                raise out_of_time(deadline, "while the answer came in") from exc
            except aiohttp.ClientPayloadError as exc:
                raise ConnectionLostError(f"answer cut off: {type(exc).__name__}") from exc
            except aiohttp.ClientError as exc:
                raise ConnectionLostError(f"answer broke off: {type(exc).__name__}") from exc
        except _ErrorAnswer as told:
            self._watch.open = None
            await self._discard(reader)
            raise told.error from None
        except PicGenError as exc:
            opened, self._watch.open = self._watch.open, None
            if opened is not None and exc.charge is None:
                exc.charge = opened  # it had started: it may be billed in full
            await self._discard(reader)
            raise
        except BaseException:
            # A cancellation leaves the open answer in the watch for the caller to record.
            _discard_soon(reader)
            raise

    async def _send(
        self, lease: KeyLease, payload: bytes, deadline: Deadline, transport: Transport
    ) -> aiohttp.ClientResponse:
        """Send the request and wait for the answer's headers: within the first-byte deadline
        for a streamed request (OpenRouter answers one at once), else within the run's."""
        # Connecting has its own, short limit; reading the body has the idle limit (_BodyReader)
        # and aiohttp's total limit, the run's deadline, as a backstop.
        timeout = aiohttp.ClientTimeout(
            total=deadline.remaining(), sock_connect=self._settings.connect_timeout_seconds
        )
        first_byte = self._settings.first_byte_timeout_seconds if transport.streams else 0.0
        remaining = deadline.remaining()
        wait = min(first_byte, remaining) if first_byte > 0 else remaining
        sending = self._session.post(
            transport.url, data=payload, headers=_request_headers(lease), timeout=timeout
        )
        try:
            return await asyncio.wait_for(sending, wait)
        except aiohttp.ConnectionTimeoutError as exc:  # nothing was sent
            raise UnreachableError(f"connect timed out ({type(exc).__name__})") from exc
        except asyncio.TimeoutError as exc:
            if wait < remaining:
                raise NoAnswerError(
                    f"no answer, not even headers, within {first_byte:g} s of sending: "
                    "the path to the image service is dead",
                    first_byte,
                ) from exc
            # The run's deadline, with the request possibly still running upstream.
            raise out_of_time(deadline, "waiting for the answer") from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientOSError) as exc:
            # Refused, reset or closed before any answer: nothing was answered.
            raise UnreachableError(f"connection failed: {type(exc).__name__}") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailableError(f"request failed: {type(exc).__name__}") from exc

    async def _read_answer(
        self,
        response: aiohttp.ClientResponse,
        reader: AnswerReader,
        deadline: Deadline,
        transport: Transport,
    ) -> Answer:
        """Read a 200 answer: an event stream, or a plain JSON body (a gateway that does not
        stream; the Image API), told apart by its Content-Type or, failing that, by its first
        bytes."""
        content_type = response.headers.get("Content-Type", "").lower()
        streamed = content_type.startswith("text/event-stream")
        body = _BodyReader(response.content, deadline, self._settings.read_timeout_seconds)
        # The idle limit starts at once for a stream (keep-alives flow from the start); a plain
        # body may only come when the picture is done: until its first byte, the deadline.
        first = await body.next(idle=streamed)
        if not streamed and looks_like_event_stream(first):
            streamed = True
        if streamed and not transport.streams:
            raise UpstreamUnavailableError(f"{transport.name} answered an unasked-for stream", 200)
        if streamed:
            return await self._read_stream(response, reader, body, first)
        skeleton, data, parsed = await self._read_plain(reader, body, first, transport.parse)
        if data is None:
            raise UpstreamUnavailableError("answer is not JSON", 200)
        if not isinstance(data, dict):
            raise UpstreamUnavailableError("answer is not a JSON object", 200)
        if parsed is None:  # an `error` object instead of choices
            raise _ErrorAnswer(
                classify_error(
                    200,
                    skeleton,
                    response.headers,
                    self._settings.model,
                    self._policy.clock.wall(),
                    keys=self._pool.keys,
                )
            )
        answer_id = data.get("id")
        answer_id = answer_id if isinstance(answer_id, str) else ""
        return Answer(parsed, reader, _generation_id(response.headers, answer_id))

    async def _read_plain(
        self,
        reader: AnswerReader,
        body: _BodyReader,
        first: bytes,
        parse: Callable[[Mapping[str, Any]], ParsedAnswer],
    ) -> tuple[bytes, Any, ParsedAnswer | None]:
        """Stream a JSON body through `reader`; the skeleton and what _finish_answer makes of it.

        Each piece is scanned and decoded on the loop as it arrives (see answer_stream); the
        decoded bytes go to a worker in batches, one batch written while the next is decoded.
        """
        writer = _Writer(self._cpu)
        try:
            piece = first
            while piece:
                reader.feed(piece)
                _check_skeleton(reader)
                await writer.after_piece(reader)
                piece = await body.next(idle=True)
            await writer.drain()
            skeleton = reader.finish()
            data, parsed = await writer.final(_finish_answer, reader, skeleton, parse)
            return skeleton, data, parsed
        finally:
            await writer.settle()

    async def _read_stream(
        self,
        response: aiohttp.ClientResponse,
        reader: AnswerReader,
        body: _BodyReader,
        first: bytes,
    ) -> Answer:
        """Read an event stream: comments skipped, each event's data through `reader`, the
        chunks put together; an error chunk raises what its status would."""
        framer = SseFramer(reader)
        chunks = StreamAssembler()
        writer = _Writer(self._cpu)
        kept = 0  # bytes of event JSON taken in so far: the whole answer's text is capped too
        try:
            piece = first
            while piece and not chunks.done:
                for event in framer.feed(piece):
                    kept += len(event)
                    if kept > SKELETON_CAP:
                        raise UpstreamUnavailableError(
                            f"stream holds more than {SKELETON_CAP} bytes besides its images", 200
                        )
                    await self._take_event(event, chunks, response.headers)
                    if chunks.done:
                        break  # what a server sends after [DONE] is no concern of ours
                _check_skeleton(reader)
                await writer.after_piece(reader)
                if not chunks.done:
                    piece = await body.next(idle=True, finished=chunks.finished)
            if not chunks.finished:
                where = "inside an event" if framer.in_event else "between events"
                raise ConnectionLostError(f"stream ended before its end ({where})")
            await writer.drain()
            await writer.final(reader.write, reader.take_unwritten())
        finally:
            await writer.settle()
        if chunks.ended_in_error:
            raise UpstreamUnavailableError("stream finished with an error and no detail", 200)
        return Answer(
            chunks.parsed(), reader, _generation_id(response.headers, chunks.generation_id)
        )

    async def _take_event(
        self, event: bytes, chunks: StreamAssembler, headers: Mapping[str, str]
    ) -> None:
        if event.strip() == DONE:
            chunks.done = True
            return
        try:
            if len(event) <= _PARSE_ON_LOOP:
                chunk = _parse_event(event)
            else:
                chunk = await self._offload(_parse_event, event)
        except (UnicodeDecodeError, ValueError) as exc:
            raise UpstreamUnavailableError("stream event is not JSON", 200) from exc
        if not isinstance(chunk, Mapping):  # garbled, not an error the service reported
            raise UpstreamUnavailableError("stream event is not a JSON object", 200)
        error = chunks.add(chunk)
        self._watch.learned_id(chunks.generation_id)
        if error is not None:
            raise _ErrorAnswer(
                classify_error_object(
                    200,
                    error,
                    headers,
                    self._settings.model,
                    self._policy.clock.wall(),
                    where="stream",
                    keys=self._pool.keys,
                )
            )
