"""One request's whole life: checks -> references -> prompt -> generation -> record -> delivery
-> memory.

The LLM tool and every command describe what they want as a `DrawJob` and hand it to
`DrawPipeline.start()`. The `DrawRequest` that comes back carries the run's deadline; its
`DrawOutcome` comes from `outcome_within()`. Each request runs as a task of its own, so it can outlive the tool call
that started it: the tool waits for it as long as AstrBot lets the tool run, then detaches it,
and a detached request sends its pictures (or one sentence on what went wrong) to the chat
itself. Unloading waits a few seconds for the requests in flight and never cuts one off: what
is still running finishes on the resources it started with (utils/chat/resources.py), which
are let go when the last of them ends.

A continued edit (the tool's `continue_last_picture`, or /改图 and /手办化 without a picture)
goes on from the last picture delivered in its conversation (utils/chat/memory.py): as the
first references, or, for a model that keeps turns (Gemini 3 image models), as the previous
turn sent back as history with its reasoning details (utils/openrouter/turns.py). Every
delivered request is remembered for its conversation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
from astrbot.api import logger
from astrbot.api.event import AstrMessageEvent, MessageChain
from astrbot.api.message_components import Image
from astrbot.api.star import Context

from ..core.charges import Charge, Outcome
from ..core.clock import SYSTEM_CLOCK, Clock, Deadline
from ..core.coerce import clip_text
from ..core.errors import (
    DeliveryError,
    MissingPromptError,
    ModelUnavailableError,
    PicGenError,
    PluginClosedError,
    ReferenceImageError,
)
from ..core.keys import redact_keys, redacted_traceback
from ..core.logs import LogRedaction
from ..core.settings import Settings
from ..core.tasks import cancel_and_wait
from ..core.urls import cleartext_log, is_cleartext_remote
from ..imaging.cleanup import CleanupTask
from ..imaging.held import Hold
from ..imaging.references import (
    ReferenceOptions,
    References,
    ReferenceSources,
    delivered_data_url,
    max_reference_images,
    references_for_request,
)
from ..imaging.store import SavedImage
from ..openrouter.capabilities import (
    IMAGES_API,
    ModelSummary,
    ResolvedImageOptions,
    check_references,
    image_model_summaries,
    keeps_turns,
    resolve_request_options,
)
from ..openrouter.image_pricing import billed_per_token, price_tiers, request_estimate
from ..openrouter.key_pool import KeyPool, KeyStatus
from ..openrouter.retry_policy import RetryPolicy
from ..openrouter.turns import MAX_IMAGE_BYTES, PreviousTurn
from ..openrouter.usage import credit_checker
from ..spend.guard import Reservation, SpendGuard, record_of
from ..ttp import AnswerWatch, GenerationRequest, GenerationResult, OpenRouterClient
from .delivery import Delivered, Delivery
from .jobs import DrawJob, DrawOutcome
from .limits import Requester, check_group
from .memory import Turn, bounded_turn, conversation_of
from .resources import SharedResources
from .sources import gather_sources
from .texts import replies
from .texts.language import Lang
from .timing import run_budget, tool_timeout_of

_LOG_PROMPT_CHARS = 300
# How long unloading (terminate(), also on every config save in the panel) waits for the
# requests in flight: the panel waits on it. What is still running then finishes by itself.
UNLOAD_WAIT = 5.0


@dataclass(eq=False)  # identity: the pipeline keeps running requests in a set
class DrawRequest:
    """One request from start to outcome; `task` runs it."""

    event: AstrMessageEvent
    job: DrawJob
    settings: Settings
    deadline: Deadline
    requester: Requester
    tool_timeout: float  # AstrBot's tool-call timeout for this chat
    # Its pictures, which the cleanup leaves alone until the request has ended.
    hold: Hold
    lang: Lang  # what the request says to the chat (and to the chat model) is in this language
    conversation: str  # whose pictures it may go on from, and where its own are remembered
    # The tool call that started it has returned: the request talks to the chat itself.
    detached: bool = False
    task: asyncio.Task[DrawOutcome] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Continuation:
    """The remembered turn a continued edit goes on from, and how it is sent."""

    turn: Turn
    paths: tuple[Path, ...]
    as_history: bool  # the previous turn as history (else its pictures as first references)


@dataclass(frozen=True)
class Checked:
    """What the checks settled before anything is paid for."""

    options: ResolvedImageOptions
    pool: KeyPool
    sources: ReferenceSources
    continuation: Continuation | None = None
    # It was to go on from the last picture and the conversation has none.
    nothing_remembered: bool = False


def _wants_avatar(sources: ReferenceSources) -> bool:
    """An avatar was asked for and this chat has none: a command says so rather than going
    on from the last picture."""
    return any(p.reason == ReferenceImageError.NO_AVATARS for p in sources.problems)


def _no_picture(sources: ReferenceSources) -> ReferenceImageError:
    """Why a command that needs a picture has none: no avatars here, or nothing was sent."""
    for problem in sources.problems:
        if problem.reason == ReferenceImageError.NO_AVATARS:
            return problem
    return ReferenceImageError("command needs an image", ReferenceImageError.MISSING)


class DrawPipeline:
    """Runs the requests of one plugin instance over its shared resources."""

    def __init__(
        self,
        context: Context,
        images_dir: Path,
        config: Mapping[str, Any],
        *,
        data_dir: Path,
        clock: Clock = SYSTEM_CLOCK,
        retry_policy: RetryPolicy | None = None,
        spend: SpendGuard | None = None,
    ) -> None:
        self._context = context
        self._config = config  # read afresh when needed: _settings()
        self.clock = clock
        self.shared = SharedResources(
            images_dir,
            clock,
            data_dir=data_dir,
            retention=lambda: self._settings().retention_seconds,
            retry_policy=retry_policy,
            spend=spend,
        )
        self.delivery = Delivery(context, self.shared.store, self.shared.cpu)
        store = self.shared.store
        self.cleanup = CleanupTask(
            store.directory,
            self._retention,
            held=store.held,
            clock=clock,
            before_sweep=self.shared.memory.expire,
        )
        self._redaction = LogRedaction(lambda: Settings.api_keys_of(config), logger.name)
        self._running: set[DrawRequest] = set()
        self._startup_check: asyncio.Task[None] | None = None
        self._closed = False
        # After close(): what else to let go with the shared resources, and the task that
        # does it once no request uses them any more.
        self._release_after: list[Callable[[], Awaitable[None]]] = []
        self._releasing: asyncio.Task[None] | None = None

    def _settings(self) -> Settings:
        return Settings.from_config(self._config)

    def open(self) -> None:
        """Start the background work: image cleanup, and a look at the configured model (it
        may wait on the network, so it never holds up AstrBot's start). From now on every
        record of the plugin and of the HTTP libraries under it has its keys masked,
        tracebacks included (utils/core/logs.py)."""
        self._redaction.install()
        api_base = self._settings().api_base
        if is_cleartext_remote(api_base):
            logger.warning(cleartext_log(api_base))
        self.shared.open()
        self.cleanup.start()
        self._startup_check = asyncio.create_task(
            self.shared.models.check_configured_model(self.http(), self._settings()),
            name="gemini-pic-gen model check",
        )

    # --- shared resources -------------------------------------------------------------------

    def http(self) -> aiohttp.ClientSession:
        """The instance's session; PluginClosedError once it was released."""
        return self.shared.http()

    def _retention(self) -> float:
        """How old a picture nothing holds must be before the cleanup removes it: the
        configured retention, never shorter than a run (a request's own pictures are held
        anyway; this covers those of an unloaded instance's requests still finishing)."""
        settings = self._settings()
        budgets = [r.deadline.budget for r in self._running]
        budgets.append(
            run_budget(settings.request_timeout_budget_seconds, tool_timeout_of(self._defaults()))
        )
        return max(settings.retention_seconds, *budgets)

    async def image_models(
        self, settings: Settings, priced: int = 20
    ) -> tuple[list[ModelSummary], bool]:
        """The image models for /画图模型, and whether they come from the model lists. The first
        `priced` Image API models get their providers' prices per picture."""
        models = self.shared.models
        try:
            http = self.http()
        except PluginClosedError as exc:  # a command routed to an instance being unloaded
            logger.warning(f"gemini-pic-gen: model list without the service's lists: {exc.detail}")
            return image_model_summaries(None), False
        listed = await models.listings(http, settings)
        summaries = image_model_summaries(listed)
        wanted = [i for i, s in enumerate(summaries[:priced]) if s.api == IMAGES_API]
        found = await asyncio.gather(
            *(models.endpoints(http, settings, summaries[i].id) for i in wanted)
        )
        for i, endpoints in zip(wanted, found, strict=True):
            if endpoints:
                summaries[i] = replace(
                    summaries[i],
                    image_prices=price_tiers(endpoints, summaries[i].capabilities.sizes),
                    per_token=billed_per_token(endpoints),
                )
        return summaries, bool(listed.chat or listed.images)

    def key_status(self, settings: Settings) -> list[KeyStatus]:
        """The key pool as admins see it (masked keys), empty when no key is configured."""
        return self.shared.key_pool(settings).snapshot() if settings.api_keys else []

    def reset_keys(self, settings: Settings, tail: str = "") -> list[str]:
        """An admin's reset of every key's state, or of the key ending in `tail` (masked keys)."""
        return self.shared.key_pool(settings).reset(tail) if settings.api_keys else []

    # --- lifecycle ----------------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait for every request still running (each ends on its own deadline)."""
        tasks = {r.task for r in self._running if r.task is not None}
        if tasks:
            await asyncio.wait(tasks)

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(
        self, wait: float = UNLOAD_WAIT, then: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Unload: stop the background work and give the requests in flight `wait` seconds
        (on the clock). Then the shared resources, and `then` (e.g. the spend ledger), are
        let go: now, or when the last request still running has ended; those finish on
        them, and send their pictures (or say what went wrong) as usual."""
        if self._closed:
            return
        self._closed = True
        if then is not None:
            self._release_after.append(then)
        await self.cleanup.stop()
        await self._stop_startup_check()
        await self._wait_for_requests(wait)
        # What the requests delivered meanwhile is remembered; from here on the next instance
        # reads the memory (a request still running is not remembered).
        await self.shared.memory.close()
        if self._running:
            logger.info(
                f"gemini-pic-gen: unloaded with {len(self._running)} request(s) still running; "
                "they finish on this instance's resources"
            )
        releasing = self._release_when_idle()
        if releasing is not None:
            await asyncio.shield(releasing)

    async def _stop_startup_check(self) -> None:
        task, self._startup_check = self._startup_check, None
        for exc in await cancel_and_wait([task]):  # it logs its own findings; this is its end
            logger.warning(f"gemini-pic-gen: start-up model check failed: {exc!r}")

    async def _wait_for_requests(self, wait: float) -> None:
        """Until the requests in flight have ended, or `wait` seconds on the clock."""
        pending: set[asyncio.Future[Any]] = {r.task for r in self._running if r.task is not None}
        if not pending:
            return
        logger.info(f"gemini-pic-gen: waiting up to {wait:g}s for {len(pending)} request(s)")
        timer = asyncio.ensure_future(self.clock.sleep(wait))
        try:
            while pending and not timer.done():
                _, pending = await asyncio.wait(
                    pending | {timer}, return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(timer)
        finally:
            timer.cancel()

    def _request_ended(self, request: DrawRequest) -> None:
        self._running.discard(request)
        self._release_when_idle()

    def _release_when_idle(self) -> asyncio.Task[None] | None:
        """After close(), once no request runs: the task that lets the resources go (one)."""
        if self._closed and not self._running and self._releasing is None:
            self._releasing = asyncio.get_running_loop().create_task(
                self._release(), name="gemini-pic-gen release"
            )
        return self._releasing

    async def _release(self) -> None:
        # What was handed to close() first: the spend side's cost lookups use the session.
        for release in self._release_after:
            try:
                await release()
            except Exception as exc:  # one failure must not keep the rest open
                logger.error(f"gemini-pic-gen: releasing {release!r} failed: {exc!r}")
        await self.shared.release()
        self._redaction.remove()

    # --- one request --------------------------------------------------------------------------

    def _defaults(self) -> Mapping[str, Any]:
        """AstrBot's default config profile (empty when it cannot tell)."""
        try:
            config: Mapping[str, Any] = self._context.get_config()
        except Exception:  # a context without configs: AstrBot's defaults apply
            return {}
        return config

    def event_config(self, event: AstrMessageEvent) -> Mapping[str, Any]:
        """AstrBot's config profile for the event's chat (empty when it cannot tell)."""
        try:
            config: Mapping[str, Any] = self._context.get_config(umo=event.unified_msg_origin)
        except Exception:  # an unknown chat: AstrBot's defaults apply
            return {}
        return config

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
            hold=self.shared.store.held.hold(),
            lang=lang,
            conversation=conversation_of(event),
        )
        request.task = asyncio.create_task(self._run(request), name="gemini-pic-gen request")
        self._running.add(request)
        request.task.add_done_callback(lambda _: self._request_ended(request))
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
        try:
            outcome = await self._outcome(request)
            if request.detached:  # nobody waits for it any more: tell the chat directly
                await self.delivery.report(request, replies.detached_report(request.lang, outcome))
        finally:
            await self.shared.cpu.run(request.hold.release, self.clock.wall())
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

    async def _checks(self, request: DrawRequest) -> Checked:
        """What must hold before anything is sent: none of it sends more than the final message
        (and, when not cached, a look at what models the service lists)."""
        settings, job, event = request.settings, request.job, request.event
        if self._closed:  # AstrBot still routed a call to this instance while unloading it
            raise PluginClosedError("request started after unload")
        check_group(request.requester, settings.limits)
        if not job.prompt and job.template is None:
            raise MissingPromptError("empty prompt")
        pool = self.shared.key_pool(settings)
        # Every key invalid, or all cooling down for long: no progress note, no downloads.
        await pool.ensure_usable(
            self.shared.retry_policy.max_cooldown_wait,
            credit_checker(self.http(), settings.api_base),
        )
        # Which API the model is asked through and what it takes (cached; fetched when stale).
        listed = await self.shared.models.listings(
            self.http(), settings, limit=request.deadline.remaining() / 4
        )
        # What the model cannot draw is mapped or refused here, before anything is sent.
        options = resolve_request_options(
            settings.model,
            job.image_size,
            settings.image_size,
            job.aspect_ratio,
            settings.aspect_ratio,
            listed,
        )
        if options.silent:
            logger.info(f"gemini-pic-gen: configured image options fitted to the model: {options}")
        sources = await gather_sources(
            event,
            settings,
            use_images=job.use_images,
            use_sender_avatar=job.use_sender_avatar,
            timeout=min(settings.download_timeout, request.deadline.remaining()),
        )
        continuation, nothing = await self._continuation(request, options, sources)
        if continuation is not None and not continuation.as_history:
            remembered = tuple(Image.fromFileSystem(str(path)) for path in continuation.paths)
            sources = replace(sources, remembered=remembered)
        wanted = sources.wanted(job.use_images)
        if continuation is not None and continuation.as_history:
            wanted += len(continuation.paths)
        check_references(options.route, wanted, job.needs_image, listed)
        if job.needs_image and not sources and continuation is None:
            raise _no_picture(sources)
        return Checked(options, pool, sources, continuation, nothing)

    async def _continuation(
        self, request: DrawRequest, options: ResolvedImageOptions, sources: ReferenceSources
    ) -> tuple[Continuation | None, bool]:
        """The remembered turn the request goes on from, if it is to (the model said so, or a
        command came without a picture), and whether it was to and found none."""
        job, settings = request.job, request.settings
        fallback = job.needs_image and not sources and not _wants_avatar(sources)
        if not (job.continue_last or fallback):
            return None, False
        turn = await self.shared.memory.recall(request.conversation, request.hold)
        if turn is None:
            logger.info(f"gemini-pic-gen: nothing remembered to continue in {request.conversation}")
            return None, job.continue_last
        directory = self.shared.store.directory
        paths = tuple(directory / name for name in turn.files)
        limit = max_reference_images(settings, options.capabilities.max_references)
        paths = paths[:limit]
        # The previous turn as history: a model that keeps turns, the turn made by this very
        # model with its reasoning details, and room for the message's pictures besides.
        as_history = (
            keeps_turns(options.route)
            and bool(turn.reasoning_details)
            and turn.model == settings.model
            and len(paths) + sources.wanted(job.use_images) <= limit
        )
        how = "as the previous turn" if as_history else "as references"
        logger.info(
            f"gemini-pic-gen: continuing from {len(paths)} remembered picture(s) of "
            f"{turn.model} {how}"
        )
        return Continuation(turn, paths, as_history), False

    async def _estimate(
        self, request: DrawRequest, options: ResolvedImageOptions, sources: ReferenceSources
    ) -> float | None:
        """What the request will cost by the Image API's prices (USD, an upper bound), when a
        budget could refuse it; None when not asked for or not known."""
        settings, route = request.settings, options.route
        if route.api != IMAGES_API or not settings.spend.any_budget:
            return None
        endpoints = await self.shared.models.endpoints(
            self.http(), settings, settings.model, limit=request.deadline.remaining() / 4
        )
        if not endpoints:
            return None
        references = max_reference_images(settings, options.capabilities.max_references)
        cost = request_estimate(
            endpoints,
            options.image_size,
            options.capabilities.sizes,
            route.n,
            min(sources.wanted(request.job.use_images), references),
            settings.reference_max_side,
        )
        logger.info(f"gemini-pic-gen: {settings.model} estimated at {cost} USD before sending")
        return cost

    async def _steps(self, request: DrawRequest) -> DrawOutcome:
        settings, job = request.settings, request.job
        checked = await self._checks(request)
        options, pool, sources = checked.options, checked.pool, checked.sources
        continuation = checked.continuation
        estimate = await self._estimate(request, options, sources)
        # Today's caps, before anything is downloaded or sent upstream; holds one picture (and
        # what it is expected to cost, when known).
        reservation = await self.shared.spend.reserve(request.requester, settings.spend, estimate)
        watch = AnswerWatch()  # the answer coming in, should a cancellation cut it
        try:
            self.shared.limiter.acquire(request.requester, settings.limits)
            history, sources = await self._history(continuation, sources)
            history_images = len(history.image_urls) if history is not None else 0
            reference_options = ReferenceOptions.from_settings(
                settings, request.deadline.remaining(), options.capabilities.max_references
            )
            if history_images:  # the history's pictures take the first places
                limit = max(1, reference_options.max_images - history_images)
                reference_options = replace(reference_options, max_images=limit)
            references = await references_for_request(
                self.http(), sources, job.use_images, reference_options, self.shared.cpu
            )
            if settings.progress_message:
                await self._progress(request)
            prompt = await self._final_prompt(settings, job, request.deadline)
            route = options.route
            generation = GenerationRequest(
                prompt,
                options.aspect_ratio,
                references.data_urls,
                image_size=options.image_size,
                api=route.api,
                modalities=route.modalities,
                n=route.n,
                history=history,
            )
            result = await self._generate(settings, pool, generation, request.deadline, watch)
            request.hold.add(image.path for image in result.images)
        except BaseException as exc:
            # A billed answer that ended the run is a ledger row (its failure carries it, or a
            # cancellation left it in the watch); without one nothing was billed, as far as
            # can be told, and the hold is dropped. Either way on every path, cancellation too.
            charge = exc.charge if isinstance(exc, PicGenError) else watch.open
            if charge is None:
                reservation.release()
            else:
                await self._record(request, reservation, charge, options)
            raise
        await self._record(request, reservation, result.charge(), options, result.images)
        continued = history_images or references.remembered
        try:
            delivered = await self.delivery.deliver(request, result.images)
        except Exception as exc:  # paid for: whatever failed, the model must not draw it again
            await self.shared.spend.mark(reservation, Outcome.UNDELIVERED)
            return DrawOutcome(
                result,
                self._not_delivered(result, exc, request.settings.api_keys),
                references=references,
                undelivered=True,
                options=options,
                continued=continued,
                continued_as_history=bool(history_images),
            )
        await self._remember(request, generation, result, delivered, references, history_images)
        return DrawOutcome(
            result,
            push_fell_back=delivered.push_fell_back,
            reencode_failed=delivered.reencode_failed,
            references=references,
            no_reference_found=job.asked_for_images
            and not (references.found or continued or checked.nothing_remembered),
            options=options,
            outgoing=delivered.outgoing,
            originals_sent=delivered.originals_sent,
            continued=continued,
            continued_as_history=bool(history_images),
            nothing_remembered=checked.nothing_remembered,
        )

    async def _history(
        self, continuation: Continuation | None, sources: ReferenceSources
    ) -> tuple[PreviousTurn | None, ReferenceSources]:
        """The previous turn to send as history, its pictures as they were delivered; when one
        cannot go (too big, gone), the pictures go as first references instead."""
        if continuation is None or not continuation.as_history:
            return None, sources
        turn = continuation.turn
        try:
            urls = [
                await self.shared.cpu.run(delivered_data_url, path, MAX_IMAGE_BYTES)
                for path in continuation.paths
            ]
        except ReferenceImageError as exc:
            logger.info(
                f"gemini-pic-gen: previous turn not sent as history ({exc.detail}); "
                "its pictures go as references"
            )
            remembered = tuple(Image.fromFileSystem(str(p)) for p in continuation.paths)
            return None, replace(sources, remembered=remembered)
        previous = PreviousTurn(turn.prompt, turn.text, tuple(urls), turn.reasoning_details)
        logger.info(
            f"gemini-pic-gen: previous turn sent as history: {len(urls)} picture(s), "
            f"{previous.encoded_bytes} bytes of data URLs, "
            f"{len(turn.reasoning_details)} reasoning detail(s)"
        )
        return previous, sources

    async def _remember(
        self,
        request: DrawRequest,
        generation: GenerationRequest,
        result: GenerationResult,
        delivered: Delivered,
        references: References,
        history_images: int,
    ) -> None:
        """The delivered pictures (as they went out) become the conversation's last turn.
        Never fails the request: the pictures are in the chat already."""
        turn = bounded_turn(
            (item.sent.path.name for item in delivered.outgoing),
            generation.prompt,
            result.model,
            self.clock.wall(),
            references=len(references.images) + history_images,
            text=result.text,
            reasoning_details=result.reasoning_details,
        )
        try:
            await self.shared.memory.remember(request.conversation, turn)
        except Exception as exc:  # a bug of ours: logged, the request has succeeded
            logger.error(f"gemini-pic-gen: delivered pictures not remembered: {exc!r}")

    @staticmethod
    def _not_delivered(
        result: GenerationResult, exc: Exception, keys: tuple[str, ...]
    ) -> DeliveryError:
        """Log why paid pictures did not reach the chat; the error the user hears of."""
        made = f"gemini-pic-gen: {len(result.images)} image(s) made, not sent"
        if isinstance(exc, DeliveryError):
            logger.error(f"{made}: {exc}")
            return exc
        logger.error(f"{made}:\n{redacted_traceback(exc, keys)}")  # not foreseen: a bug of ours
        return DeliveryError(f"{type(exc).__name__}: {exc}")

    async def _record(
        self,
        request: DrawRequest,
        reservation: Reservation,
        charge: Charge,
        options: ResolvedImageOptions,
        images: tuple[SavedImage, ...] = (),
    ) -> int | None:
        """A billed answer into the ledger, before delivery: it is paid for either way. Its
        row's id (None: the ledger did not take it)."""
        if charge.outcome != Outcome.PICTURE:
            logger.info(
                f"gemini-pic-gen: billed answer without a picture ({charge.outcome}, cost "
                f"{charge.cost if charge.cost is not None else 'not reported'}, generation "
                f"{charge.generation_id or 'unknown'})"
            )
        entry = record_of(
            request.requester,
            charge,
            self.clock.wall(),
            size=options.image_size or "",
            files=tuple(image.path.name for image in images),
        )
        return await reservation.commit(entry)

    async def _progress(self, request: DrawRequest) -> None:
        try:
            text = replies.progress(request.lang, request.job.action)
            await self.delivery.send(request, MessageChain().message(text))
        except DeliveryError as exc:  # a lost progress note must not cost the picture
            logger.warning(f"gemini-pic-gen: progress message not sent: {exc.detail}")

    async def _final_prompt(self, settings: Settings, job: DrawJob, deadline: Deadline) -> str:
        details = job.prompt
        if details and settings.translate_prompt:
            outcome = await self.shared.translator.translate(
                details,
                timeout=settings.translate_timeout,
                proxy=settings.translate_proxy,
                limit=max(0.5, deadline.remaining()),
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
        self,
        settings: Settings,
        pool: KeyPool,
        request: GenerationRequest,
        deadline: Deadline,
        watch: AnswerWatch,
    ) -> GenerationResult:
        if is_cleartext_remote(settings.api_base):  # on every use: it is sending keys right now
            logger.warning(cleartext_log(settings.api_base))
        shared = self.shared
        client = OpenRouterClient(
            self.http(),
            settings,
            shared.store,
            pool=pool,
            policy=shared.retry_policy,
            cpu=shared.cpu,
        )
        try:
            result = await client.generate(request, deadline, watch)
        except ModelUnavailableError as exc:
            # Name the image models that do exist, so the admin knows what to switch to.
            raise await shared.models.explain_missing_model(self.http(), settings, exc) from exc
        logger.info(
            f"gemini-pic-gen: {len(result.images)} image(s) from {result.model} "
            f"with key {result.key_mask}"
        )
        return result
