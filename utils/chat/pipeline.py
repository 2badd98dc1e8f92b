"""One request's whole life: checks -> reference images -> prompt -> generation -> delivery.

The LLM tool and every command describe what they want as a `DrawJob` and hand it to
`DrawPipeline.start()`. The `DrawRequest` that comes back carries the run's deadline; its
`DrawOutcome` comes from `outcome_within()`. Each request runs as a task of its own, so it can outlive the tool call
that started it: the tool waits for it as long as AstrBot lets the tool run, then detaches it,
and a detached request sends its pictures (or one sentence on what went wrong) to the chat
itself. `drain()` waits for the requests still running, so a reload or unload never cuts one off.

The pipeline also owns what all requests of one plugin instance share: the HTTP session, the
CPU workers, the key pool, the retry policy, the limiter, the daily caps (the spend guard over
the ledger), the translator and the model catalog.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from astrbot.api import logger
from astrbot.api.event import AstrMessageEvent, MessageChain
from astrbot.api.message_components import File, Image
from astrbot.api.star import Context

from ..core.clock import SYSTEM_CLOCK, Clock, Deadline
from ..core.coerce import clip_text
from ..core.errors import (
    DeliveryError,
    MissingPromptError,
    ModelUnavailableError,
    PicGenError,
    ReferenceImageError,
)
from ..core.keys import KeyRedactingFilter, mask_key, redact_keys, redacted_traceback
from ..core.settings import Settings
from ..core.workers import CpuPool
from ..imaging.cleanup import CleanupTask
from ..imaging.outgoing import Outgoing, prepare_outgoing
from ..imaging.references import (
    ReferenceOptions,
    ReferenceSources,
    references_for_request,
)
from ..imaging.store import ImageStore, SavedImage
from ..openrouter.capabilities import (
    ModelSummary,
    ResolvedImageOptions,
    image_model_summaries,
    resolve_request_options,
)
from ..openrouter.key_pool import KeyPool, KeyStatus
from ..openrouter.model_catalog import ModelCatalog
from ..openrouter.retry_policy import RetryPolicy
from ..openrouter.usage import credit_checker
from ..spend.guard import Reservation, SpendGuard, record_of
from ..ttp import GenerationRequest, GenerationResult, OpenRouterClient
from .delivery import (
    FILE_PLATFORMS,
    push_images,
    send_onebot_file,
    send_onebot_images,
    should_push,
)
from .jobs import DrawJob, DrawOutcome
from .limits import Requester, RequestLimiter, check_group
from .sources import gather_sources
from .texts import replies
from .texts.language import Lang
from .timing import run_budget, tool_timeout_of
from .translate import PromptTranslator

_LOG_PROMPT_CHARS = 300
# How long terminate() waits at most for requests still running (each also ends on its own
# deadline first): long enough for a slow 4K picture, short enough that a shutdown ends.
DRAIN_LIMIT = 300.0


@dataclass(frozen=True)
class Delivered:
    """What delivery did: whether the push fell back, the pictures as sent, the originals as
    files."""

    push_fell_back: bool = False
    outgoing: tuple[Outgoing, ...] = ()
    originals_sent: bool | None = None


@dataclass(eq=False)  # identity: the pipeline keeps running requests in a set
class DrawRequest:
    """One request from start to outcome; `task` runs it."""

    event: AstrMessageEvent
    job: DrawJob
    settings: Settings
    deadline: Deadline
    requester: Requester
    tool_timeout: float  # AstrBot's tool-call timeout for this chat
    lang: Lang  # what the request says to the chat (and to the chat model) is in this language
    # The tool call that started it has returned: the request talks to the chat itself.
    detached: bool = False
    task: asyncio.Task[DrawOutcome] | None = field(default=None, repr=False)


def _no_picture(sources: ReferenceSources) -> ReferenceImageError:
    """Why a command that needs a picture has none: no avatars here, or nothing was sent."""
    for problem in sources.problems:
        if problem.reason == ReferenceImageError.NO_AVATARS:
            return problem
    return ReferenceImageError("command needs an image", ReferenceImageError.MISSING)


def _plugin_log() -> logging.Logger:
    """The logger this plugin's modules log to: its own on 4.28, AstrBot's on 4.14."""
    return logging.getLogger(logger.name)


class DrawPipeline:
    """Runs the requests of one plugin instance and owns what they share."""

    def __init__(
        self,
        context: Context,
        images_dir: Path,
        config: Mapping[str, Any],
        *,
        clock: Clock = SYSTEM_CLOCK,
        retry_policy: RetryPolicy | None = None,
        spend: SpendGuard | None = None,
    ) -> None:
        self._context = context
        self._settings = lambda: Settings.from_config(config)  # read afresh when needed
        self.clock = clock
        self.store = ImageStore(images_dir)
        self.limiter = RequestLimiter(clock=clock)
        # Daily caps and the ledger; without one, nothing is capped or recorded.
        self.spend = spend or SpendGuard(None, clock)
        self.translator = PromptTranslator()
        self.retry_policy = retry_policy or RetryPolicy(clock=clock)
        self.cpu = CpuPool()  # Pillow/base64 work of every request, off the event loop
        self.models = ModelCatalog(clock=clock)
        self._session: aiohttp.ClientSession | None = None
        self._key_pool: KeyPool | None = None
        self.cleanup = CleanupTask(self.store.directory, lambda: self._settings().retention_seconds)
        self._running: set[DrawRequest] = set()
        self._startup_check: asyncio.Task[None] | None = None
        self._redact_logs = KeyRedactingFilter(lambda: Settings.api_keys_of(config))
        self._closed = False

    def open(self) -> None:
        """Start the background work: image cleanup, and a look at the configured model (it
        may wait on the network, so it never holds up AstrBot's start). From now on every
        record of the plugin's logger has its keys masked, tracebacks included."""
        _plugin_log().addFilter(self._redact_logs)
        self.cleanup.start()
        self._startup_check = asyncio.create_task(
            self.models.check_configured_model(self.http(), self._settings())
        )

    # --- shared resources -------------------------------------------------------------------

    def http(self) -> aiohttp.ClientSession:
        # One session per plugin instance: connection reuse across requests, closed on unload.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def key_pool(self, settings: Settings) -> KeyPool:
        """The pool for the configured keys; rebuilt (health forgotten) when the keys change."""
        if self._key_pool is None or self._key_pool.keys != settings.api_keys:
            self._key_pool = KeyPool(settings.api_keys, clock=self.clock)
            masked = ", ".join(mask_key(k) for k in settings.api_keys) or "none"
            logger.info(
                f"gemini-pic-gen: key pool built with {len(settings.api_keys)} key(s): {masked}"
            )
        return self._key_pool

    async def image_models(self, settings: Settings) -> tuple[list[ModelSummary], bool]:
        """The image models for /画图模型, and whether they come from the model list."""
        listed = await self.models.models(self.http(), settings)
        return image_model_summaries(listed), bool(listed)

    def key_status(self, settings: Settings) -> list[KeyStatus]:
        """The key pool as admins see it (masked keys), empty when no key is configured."""
        return self.key_pool(settings).snapshot() if settings.api_keys else []

    def reset_keys(self, settings: Settings, tail: str = "") -> list[str]:
        """An admin's reset of every key's state, or of the key ending in `tail` (masked keys)."""
        return self.key_pool(settings).reset(tail) if settings.api_keys else []

    async def drain(self, limit: float = DRAIN_LIMIT) -> None:
        """Wait for the requests still running (each ends on its own deadline anyway)."""
        tasks = {r.task for r in self._running if r.task is not None}
        if not tasks:
            return
        longest = max(r.deadline.remaining() for r in self._running)
        logger.info(f"gemini-pic-gen: waiting for {len(tasks)} request(s) to finish")
        await asyncio.wait(tasks, timeout=min(limit, longest + 5.0))

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """Stop the background work, let the requests in flight finish, release everything."""
        await self.cleanup.stop()
        if self._startup_check is not None:
            self._startup_check.cancel()
        await self.drain()
        self._closed = True
        self.cpu.close()
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
        await self.translator.close()
        _plugin_log().removeFilter(self._redact_logs)

    # --- one request --------------------------------------------------------------------------

    def event_config(self, event: AstrMessageEvent) -> dict:
        """AstrBot's config profile for the event's chat (empty when it cannot tell)."""
        try:
            return self._context.get_config(umo=event.unified_msg_origin)
        except Exception:  # an unknown chat: AstrBot's defaults apply
            return {}

    def start(
        self, event: AstrMessageEvent, job: DrawJob, settings: Settings, lang: Lang
    ) -> DrawRequest:
        tool_timeout = tool_timeout_of(self.event_config(event))
        budget = run_budget(settings.request_timeout_budget_seconds, tool_timeout)
        request = DrawRequest(
            event=event,
            job=job,
            settings=settings,
            deadline=Deadline.start(budget, self.clock),
            requester=Requester.from_event(event),
            tool_timeout=tool_timeout,
            lang=lang,
        )
        request.task = asyncio.create_task(self._run(request), name="gemini-pic-gen request")
        self._running.add(request)
        request.task.add_done_callback(lambda _: self._running.discard(request))
        return request

    async def outcome_within(self, request: DrawRequest, seconds: float) -> DrawOutcome | None:
        """The outcome if it comes within `seconds`; else None, and the request goes on by
        itself (detached), as it does when the caller is cancelled."""
        assert request.task is not None
        try:
            done, _ = await asyncio.wait({request.task}, timeout=max(0.0, seconds))
        except asyncio.CancelledError:  # AstrBot gave up on the call: the picture still comes
            request.detached = True
            raise
        if done:
            return request.task.result()
        # No await since wait() returned: the request sees the flag before it sends more.
        request.detached = True
        return None

    async def _run(self, request: DrawRequest) -> DrawOutcome:
        outcome = await self._outcome(request)
        if request.detached:  # nobody waits for it any more: tell the chat directly
            await self._report_detached(request, outcome)
        return outcome

    async def _outcome(self, request: DrawRequest) -> DrawOutcome:
        """Every step of a request; failures become a user message, never an exception."""
        keys = request.settings.api_keys
        try:
            return await self._steps(request)
        except PicGenError as exc:
            logger.warning(
                f"gemini-pic-gen failed: {type(exc).__name__}: {redact_keys(exc.detail, keys)}"
            )
            return DrawOutcome(None, exc)
        except Exception as exc:  # a bug of ours: log it (keys redacted), never show it
            logger.error(f"gemini-pic-gen crashed:\n{redacted_traceback(exc, keys)}")
            return DrawOutcome(None, exc)

    async def _checks(
        self, request: DrawRequest
    ) -> tuple[ResolvedImageOptions, KeyPool, ReferenceSources]:
        """What must hold before anything is sent: none of it sends more than the final message."""
        settings, job, event = request.settings, request.job, request.event
        check_group(request.requester, settings.limits)
        if not job.prompt and job.template is None:
            raise MissingPromptError("empty prompt")
        # What the model cannot draw is mapped or refused here, before anything is sent.
        options = resolve_request_options(
            settings.model,
            job.image_size,
            settings.image_size,
            job.aspect_ratio,
            settings.aspect_ratio,
            self.models.cached(settings),
        )
        if options.silent:
            logger.info(f"gemini-pic-gen: configured image options fitted to the model: {options}")
        pool = self.key_pool(settings)
        # Every key invalid, or all cooling down for long: no progress note, no downloads.
        await pool.ensure_usable(
            self.retry_policy.max_cooldown_wait, credit_checker(self.http(), settings.api_base)
        )
        sources = await gather_sources(
            event,
            settings,
            use_images=job.use_images,
            use_sender_avatar=job.use_sender_avatar,
            timeout=min(settings.download_timeout, request.deadline.remaining()),
        )
        if job.needs_image and not sources:
            raise _no_picture(sources)
        return options, pool, sources

    async def _steps(self, request: DrawRequest) -> DrawOutcome:
        settings, job = request.settings, request.job
        options, pool, sources = await self._checks(request)
        # Today's caps, before anything is downloaded or sent upstream; holds one picture.
        reservation = await self.spend.reserve(request.requester, settings.spend)
        try:
            self.limiter.acquire(request.requester, settings.limits)
            references = await references_for_request(
                self.http(),
                sources,
                job.use_images,
                ReferenceOptions.from_settings(settings, request.deadline.remaining()),
                self.cpu,
            )
            if settings.progress_message:
                await self._progress(request)
            prompt = await self._final_prompt(settings, job, request.deadline)
            generation = GenerationRequest(
                prompt, options.aspect_ratio, references.data_urls, image_size=options.image_size
            )
            result = await self._generate(settings, pool, generation, request.deadline)
        except BaseException:
            reservation.release()  # nothing was made (or paid for, as far as we can tell)
            raise
        await self._record(request, reservation, result)
        try:
            delivered = await self._deliver(request, result)
        except DeliveryError as exc:
            logger.error(f"gemini-pic-gen: {len(result.images)} image(s) made, not sent: {exc}")
            return DrawOutcome(
                result,
                exc,
                references=references,
                undelivered=True,
                options=options,
            )
        return DrawOutcome(
            result,
            push_fell_back=delivered.push_fell_back,
            references=references,
            no_reference_found=job.asked_for_images and not references.found,
            options=options,
            outgoing=delivered.outgoing,
            originals_sent=delivered.originals_sent,
        )

    async def _record(
        self, request: DrawRequest, reservation: Reservation, result: GenerationResult
    ) -> None:
        """The generation goes into the ledger before delivery: it is paid for either way."""
        await reservation.commit(record_of(request.requester, result, self.clock.wall()))

    async def _progress(self, request: DrawRequest) -> None:
        try:
            text = replies.progress(request.lang, request.job.action)
            await request.event.send(MessageChain().message(text))
        except Exception as exc:  # a lost progress note must not cost the picture
            logger.warning(f"gemini-pic-gen: progress message not sent: {exc!r}")

    async def _final_prompt(self, settings: Settings, job: DrawJob, deadline: Deadline) -> str:
        details = job.prompt
        if details and settings.translate_prompt:
            timeout = max(0.5, min(settings.translate_timeout, deadline.remaining()))
            outcome = await self.translator.translate(
                details, timeout=timeout, proxy=settings.translate_proxy
            )
            if outcome.failed:
                logger.warning(f"gemini-pic-gen: {outcome.note}; sending the original prompt")
            else:
                logger.debug(f"gemini-pic-gen: prompt translation: {outcome.note}")
            details = outcome.text
        prompt = job.render(details)
        logger.info(f"gemini-pic-gen prompt: {clip_text(prompt, _LOG_PROMPT_CHARS)}")
        return prompt

    async def _generate(
        self, settings: Settings, pool: KeyPool, request: GenerationRequest, deadline: Deadline
    ) -> GenerationResult:
        client = OpenRouterClient(
            self.http(), settings, self.store, pool=pool, policy=self.retry_policy, cpu=self.cpu
        )
        try:
            result = await client.generate(request, deadline)
        except ModelUnavailableError as exc:
            # Name the image models that do exist, so the admin knows what to switch to.
            raise await self.models.explain_missing_model(self.http(), settings, exc) from exc
        logger.info(
            f"gemini-pic-gen: {len(result.images)} image(s) from {result.model} "
            f"with key {result.key_mask}"
        )
        return result

    # --- delivery -----------------------------------------------------------------------------

    async def _deliver(self, request: DrawRequest, result: GenerationResult) -> Delivered:
        """Send the images (re-encoded where above the limit), then the originals as files
        when asked; a note for the model when delivery had to fall back."""
        settings = request.settings
        outgoing = tuple(
            await prepare_outgoing(
                result.images, self.store, settings.send_image_max_bytes, self.cpu
            )
        )
        for item in outgoing:
            if item.reencoded is not None:
                logger.info(
                    f"gemini-pic-gen: {item.original.path.name} ({item.original.size} bytes) "
                    f"sent as {item.reencoded.path.name} ({item.reencoded.size} bytes, "
                    f"{item.reencoded.width}x{item.reencoded.height})"
                )
        mode, fell_back = await self._send_pictures(request, [item.sent.path for item in outgoing])
        originals = [item.original for item in outgoing if item.reencoded is not None]
        sent: bool | None = None
        if settings.send_original_file and originals:
            sent = await self._send_originals(request, originals, mode)
        return Delivered(fell_back, outgoing, sent)

    async def _send_pictures(self, request: DrawRequest, paths: list[Path]) -> tuple[str, bool]:
        """(how they went: "file_service", "pushed" or "inline"; whether the push fell back)."""
        settings, event = request.settings, request.event
        if settings.use_file_service and await self._send_file_service_links(request, paths):
            return "file_service", False
        fell_back = False
        if should_push(settings, event.get_platform_name(), event):
            try:
                remote_paths = await push_images(paths, settings, request.deadline.remaining())
                await send_onebot_images(event, remote_paths)
                logger.info(f"gemini-pic-gen: pushed {len(paths)} image(s) to NapCat host")
                return "pushed", False
            except DeliveryError as exc:
                logger.warning(f"NapCat push to {exc.target} failed ({exc.detail}); sending inline")
                fell_back = True
        chain = MessageChain()
        for path in paths:
            chain.file_image(str(path))
        await self._send(request, chain)
        return "inline", fell_back

    async def _send_originals(
        self, request: DrawRequest, originals: list[SavedImage], mode: str
    ) -> bool:
        """The originals of re-encoded pictures as files, the way the pictures went. Never
        raises: the pictures are out already; False if a file could not be sent."""
        event = request.event
        if mode == "file_service" or event.get_platform_name() not in FILE_PLATFORMS:
            return False  # a link-only setup or a platform without files
        try:
            if mode == "pushed":
                remote_paths = await push_images(
                    [o.path for o in originals], request.settings, request.deadline.remaining()
                )
                for original, remote in zip(originals, remote_paths, strict=True):
                    await send_onebot_file(event, remote, original.path.name)
            else:
                for original in originals:
                    chain = MessageChain([File(name=original.path.name, file=str(original.path))])
                    await self._send(request, chain)
        except DeliveryError as exc:
            logger.warning(f"gemini-pic-gen: original picture not sent as a file: {exc.detail}")
            return False
        return True

    async def _send_file_service_links(self, request: DrawRequest, paths: list[Path]) -> bool:
        if not self._context.get_config().get("callback_api_base"):
            logger.warning("use_file_service is on but callback_api_base is not set; sending files")
            return False
        chain = MessageChain()
        for path in paths:
            url = await Image.fromFileSystem(str(path)).register_to_file_service()
            chain.chain.append(Image.fromURL(url))
        await self._send(request, chain)
        return True

    async def _send(self, request: DrawRequest, chain: MessageChain) -> None:
        """To the chat of the request: through its event while the tool call is live, through
        AstrBot's context once the request is detached."""
        try:
            if not request.detached:
                await request.event.send(chain)
                return
            sent = await self._context.send_message(request.event.unified_msg_origin, chain)
        except Exception as exc:  # adapters raise their own types
            raise DeliveryError(f"sending to the chat failed: {type(exc).__name__}") from exc
        if sent is False:
            raise DeliveryError("no platform for this chat accepts messages sent later")

    async def _report_detached(self, request: DrawRequest, outcome: DrawOutcome) -> None:
        """A detached request tells the chat itself what the model would have relayed."""
        lines = replies.detached_report(request.lang, outcome)
        if not lines:
            return
        try:
            await self._send(request, MessageChain().message("\n".join(lines)))
        except DeliveryError as exc:
            logger.warning(f"gemini-pic-gen: result of a detached request not sent: {exc}")
