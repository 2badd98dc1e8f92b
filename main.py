"""AstrBot plugin: Gemini image generation and editing through OpenRouter."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from astrbot.api import logger
from astrbot.api.event import AstrMessageEvent, MessageChain, filter
from astrbot.api.message_components import Image
from astrbot.api.star import Context, Star, StarTools

from .utils.chat.admin import (
    apply_and_save,
    describe_settings,
    parse_api_base,
    parse_model_id,
)
from .utils.chat.commands import (
    CMD_API_BASE,
    CMD_DRAW,
    CMD_EDIT,
    CMD_FIGURE,
    CMD_HELP,
    CMD_KEYS,
    CMD_MODEL,
    CMD_SETTINGS,
    DrawJob,
    command_argument,
    edit_job,
    figure_job,
    help_text,
)
from .utils.chat.delivery import push_images, send_onebot_images, should_push
from .utils.chat.limits import Requester, RequestLimiter, check_group
from .utils.chat.translate import PromptTranslator
from .utils.core.clock import Deadline
from .utils.core.coerce import clip_text, coerce_bool, coerce_text
from .utils.core.errors import (
    ConfigSaveError,
    DeliveryError,
    MissingPromptError,
    ModelUnavailableError,
    NoApiKeyError,
    PicGenError,
    ReferenceImageError,
    delivery_fallback_note,
    user_message,
)
from .utils.core.image_options import resolve_aspect_ratio
from .utils.core.keys import mask_key, redact_keys
from .utils.core.settings import Settings, normalize_api_base
from .utils.core.workers import CpuPool
from .utils.imaging.cleanup import CleanupTask
from .utils.imaging.references import (
    ReferenceOptions,
    References,
    image_components,
    references_for_request,
)
from .utils.imaging.store import ImageStore
from .utils.openrouter.key_pool import KeyPool, KeyStatus, format_pool_status
from .utils.openrouter.model_catalog import ModelCatalog
from .utils.openrouter.retry_policy import RetryPolicy
from .utils.openrouter.usage import KeyReport, fetch_key_reports
from .utils.spend.service import SpendService
from .utils.ttp import GenerationRequest, GenerationResult, OpenRouterClient

PLUGIN_DIR = Path(__file__).resolve().parent
_LOG_PROMPT_CHARS = 300


@dataclass(frozen=True)
class DrawOutcome:
    """A generation's end: the result (images already sent), or the Chinese text for the user."""

    result: GenerationResult | None
    message: str = ""
    note: str = ""  # delivery caveat for the model, e.g. the NapCat push fell back
    references: References = field(default_factory=References)

    def remarks(self) -> list[str]:
        """What the user should hear besides the images: skipped references, dropped images."""
        remarks = [user_message(problem) for problem in self.references.problems]
        if self.result is not None and self.result.discarded:
            remarks.append(f"另有 {self.result.discarded} 张返回的图片数据损坏，已丢弃。")
        if self.note:
            remarks.append(self.note)
        return remarks


class GeminiImagePlugin(Star):
    def __init__(self, context: Context, config: dict | None = None) -> None:
        super().__init__(context)
        self.config = config if config is not None else {}
        self.store = ImageStore(PLUGIN_DIR / "images")
        self.limiter = RequestLimiter()
        self.translator = PromptTranslator()
        self._session: aiohttp.ClientSession | None = None
        self._config_lock = asyncio.Lock()
        # Retry timing and its clock; tests swap in a policy with a recording clock.
        self.retry_policy = RetryPolicy()
        # Shared by all requests of this instance; built on first use, rebuilt on key changes.
        self.key_pool: KeyPool | None = None
        self.cpu = CpuPool()  # Pillow/base64 work of every request, off the event loop
        self.models = ModelCatalog()
        self.cleanup = CleanupTask(self.store.directory, lambda: self.settings().retention_seconds)
        self._background: set[asyncio.Task[None]] = set()
        self.spend: SpendService | None = None  # made in initialize(): needs the data directory

    async def initialize(self) -> None:
        self._http()
        self.cleanup.start()
        await self._start_spend()
        # The model check may wait on the network: never let it hold up AstrBot's start.
        self._spawn(self.models.check_configured_model(self._http(), self.settings()))

    async def terminate(self) -> None:
        await self._stop_spend()
        await self.cleanup.stop()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self.cpu.close()
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
        await self.translator.close()

    def _http(self) -> aiohttp.ClientSession:
        # One session per plugin instance: connection reuse across requests, closed on unload.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)  # keep a reference until done, or the task may be collected
        task.add_done_callback(self._background.discard)

    def settings(self) -> Settings:
        return Settings.from_config(self.config)

    def _key_pool(self, settings: Settings) -> KeyPool:
        if self.key_pool is None or self.key_pool.keys != settings.api_keys:
            self.key_pool = KeyPool(settings.api_keys, clock=self.retry_policy.clock)
            masked = ", ".join(mask_key(k) for k in settings.api_keys) or "none"
            logger.info(
                f"gemini-pic-gen: key pool built with {len(settings.api_keys)} key(s): {masked}"
            )
        return self.key_pool

    # --- spend ledger, daily caps and the dashboard page ------------------------------------------

    async def _start_spend(self) -> None:
        data_dir = StarTools.get_data_dir()
        self.spend = SpendService(data_dir, self.settings().spend.ledger_retention_days)
        await self.spend.start()
        # The page's routes carry the plugin's name, which names its data directory too.
        self.spend.register_page(
            self.context,
            data_dir.name,
            images_dir=self.store.directory,
            policy=lambda: self.settings().spend,
            key_status=self._key_rows,
            key_reports=self._key_reports,
            run_blocking=self.cpu.run,
        )

    async def _stop_spend(self) -> None:
        if self.spend is not None:
            await self.spend.stop()

    def _key_rows(self) -> list[KeyStatus]:
        settings = self.settings()
        return self._key_pool(settings).snapshot() if settings.api_keys else []

    async def _key_reports(self) -> list[KeyReport]:
        settings = self.settings()
        return await fetch_key_reports(self._http(), settings.api_base, settings.api_keys)

    # --- the LLM tool ---------------------------------------------------------------------------

    @filter.llm_tool(name="gemini-pic-gen")
    async def gemini_pic_gen(
        self,
        event: AstrMessageEvent,
        image_description: str = "",
        use_reference_images: bool = True,
        aspect_ratio: str = "",
        **extra: object,
    ) -> str:
        """使用 Gemini 图像模型根据文字描述生成图片，或根据用户发送/引用的图片进行修改。生成的图片会直接发送给用户。

        Args:
            image_description(string): 要生成或修改的图片内容的详细描述，保留用户原话中需要画进图里的文字
            use_reference_images(boolean): 是否使用用户消息及其引用消息中的图片作为参考图，默认为 true；纯文字生图时填 false
            aspect_ratio(string): 可选，图片宽高比，只能是 1:1、2:3、3:2、3:4、4:3、4:5、5:4、9:16、16:9、21:9 之一；用户没有指定比例时不要填写
        """
        if extra:
            logger.debug(f"gemini-pic-gen ignored unexpected arguments: {sorted(extra)}")
        job = DrawJob(
            prompt=coerce_text(image_description),
            use_images=coerce_bool(use_reference_images, default=True),
            aspect_ratio=coerce_text(aspect_ratio),
        )
        outcome = await self.draw(event, job)
        return self._summary(outcome)

    @staticmethod
    def _summary(outcome: DrawOutcome) -> str:
        """The text handed back to the chat model, which relays what matters to the user."""
        if outcome.result is None:
            return outcome.message
        parts = [f"已生成 {len(outcome.result.images)} 张图片并发送给用户。"]
        if outcome.references.images:
            parts.append(f"参考了 {len(outcome.references.images)} 张图片。")
        parts.extend(outcome.remarks())
        if outcome.result.text:
            parts.append(f"模型附言：{outcome.result.text[:200]}")
        return "".join(parts)

    # --- chat commands --------------------------------------------------------------------------

    @filter.command(CMD_DRAW)
    async def cmd_draw(self, event: AstrMessageEvent) -> None:
        """根据文字生成图片：/画图 <描述>"""
        prompt = command_argument(event.message_str, CMD_DRAW)
        if not prompt:
            return await self._reply(
                event, f"用法：/{CMD_DRAW} <图片描述>，例如 /{CMD_DRAW} 一只在月球上看书的猫"
            )
        await self._run_command(event, DrawJob(prompt=prompt))

    @filter.command(CMD_EDIT)
    async def cmd_edit(self, event: AstrMessageEvent) -> None:
        """按描述修改图片：/改图 <描述>（附图或回复带图消息）"""
        prompt = command_argument(event.message_str, CMD_EDIT)
        if not prompt:
            return await self._reply(
                event, f"用法：/{CMD_EDIT} <修改要求>，并附上图片或回复一条带图片的消息。"
            )
        await self._run_command(event, edit_job(prompt))

    @filter.command(CMD_FIGURE)
    async def cmd_figure(self, event: AstrMessageEvent) -> None:
        """把图片里的角色做成手办照片：/手办化 [补充描述]"""
        extra = command_argument(event.message_str, CMD_FIGURE)
        await self._run_command(event, figure_job(extra))

    @filter.command(CMD_HELP)
    async def cmd_help(self, event: AstrMessageEvent) -> None:
        """画图插件的指令说明"""
        await self._reply(event, help_text(self.settings(), self._wake_prefix(event)))

    @filter.permission_type(filter.PermissionType.ADMIN)
    @filter.command(CMD_MODEL)
    async def cmd_model(self, event: AstrMessageEvent) -> None:
        """（管理员）切换图像模型：/画图模型 <模型ID>"""
        value = command_argument(event.message_str, CMD_MODEL)
        if not value:
            current = self.settings().model
            return await self._reply(event, f"当前图像模型：{current}\n用法：/{CMD_MODEL} <模型ID>")
        try:
            model = parse_model_id(value)
        except PicGenError as exc:
            return await self._reply(event, user_message(exc))
        await self._save_setting(event, f"已将图像模型切换为 {model}", model_name=model)

    @filter.permission_type(filter.PermissionType.ADMIN)
    @filter.command(CMD_API_BASE)
    async def cmd_api_base(self, event: AstrMessageEvent) -> None:
        """（管理员）切换 API 地址：/画图接口 <地址|默认>"""
        value = command_argument(event.message_str, CMD_API_BASE)
        if not value:
            current = self.settings().api_base
            return await self._reply(
                event,
                f"当前 API 地址：{current}\n用法：/{CMD_API_BASE} <地址>，填“默认”恢复官方地址",
            )
        try:
            api_base = parse_api_base(value)
        except PicGenError as exc:
            return await self._reply(event, user_message(exc))
        shown = normalize_api_base(api_base) + ("（OpenRouter 官方）" if not api_base else "")
        await self._save_setting(event, f"已将 API 地址切换为 {shown}", custom_api_base=api_base)

    @filter.permission_type(filter.PermissionType.ADMIN)
    @filter.command(CMD_SETTINGS)
    async def cmd_settings(self, event: AstrMessageEvent) -> None:
        """（管理员）查看画图插件当前设置，密钥已打码"""
        await self._reply(event, describe_settings(self.settings()))

    @filter.permission_type(filter.PermissionType.ADMIN)
    @filter.command(CMD_KEYS, alias={"gemini_keys"})
    async def cmd_keys(self, event: AstrMessageEvent) -> None:
        """（管理员）查看密钥池：打码的密钥、状态（正常/冷却至某时/无效/额度用尽）、本次启动以来的成功与失败次数"""
        settings = self.settings()
        rows = self._key_pool(settings).snapshot() if settings.api_keys else []
        await self._reply(event, format_pool_status(rows, settings.model))

    # --- the one generation path: tool and commands ---------------------------------------------

    async def draw(self, event: AstrMessageEvent, job: DrawJob) -> DrawOutcome:
        """Check, translate, generate and send the images; failures become a user message."""
        settings = self.settings()
        # The whole run (every step, every try) must end inside AstrBot's tool-call timeout.
        deadline = Deadline.start(settings.request_timeout_budget_seconds, self.retry_policy.clock)
        try:
            return await self._draw(event, settings, job, deadline)
        except PicGenError as exc:
            logger.warning(
                f"gemini-pic-gen failed: {type(exc).__name__}: "
                f"{redact_keys(exc.detail, settings.api_keys)}"
            )
            return DrawOutcome(None, user_message(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug of ours: log it, never show it
            logger.error(
                f"gemini-pic-gen crashed: {redact_keys(repr(exc), settings.api_keys)}",
                exc_info=True,
            )
            return DrawOutcome(None, user_message(exc))

    async def _draw(
        self, event: AstrMessageEvent, settings: Settings, job: DrawJob, deadline: Deadline
    ) -> DrawOutcome:
        requester = Requester.from_event(event)
        # Fast checks first: none of them sends anything but the final message.
        check_group(requester, settings.limits)
        if not job.prompt and job.template is None:
            raise MissingPromptError("empty prompt")
        ratio = resolve_aspect_ratio(job.aspect_ratio, settings.aspect_ratio)
        if not settings.api_keys:
            raise NoApiKeyError("no usable API key configured")
        if job.needs_image and not image_components(event.get_messages()):
            raise ReferenceImageError("command needs an image", ReferenceImageError.MISSING)
        self.limiter.acquire(requester, settings.limits)
        references = await references_for_request(
            self._http(),
            event.get_messages(),
            (event.message_str, job.prompt),
            job.use_images,
            ReferenceOptions.from_settings(settings),
            self.cpu,
        )
        if settings.progress_message:
            await self._progress(event, job)
        prompt = await self._final_prompt(settings, job)
        request = GenerationRequest(prompt, ratio, references.data_urls)
        result = await self._generate(settings, request, deadline)
        note = await self._deliver(event, result, settings)
        return DrawOutcome(result, note=note, references=references)

    async def _final_prompt(self, settings: Settings, job: DrawJob) -> str:
        details = job.prompt
        if details and settings.translate_prompt:
            outcome = await self.translator.translate(
                details, timeout=settings.translate_timeout, proxy=settings.translate_proxy
            )
            if outcome.failed:
                logger.warning(f"gemini-pic-gen: {outcome.note}; sending the original prompt")
            else:
                logger.debug(f"gemini-pic-gen: prompt translation: {outcome.note}")
            details = outcome.text
        prompt = job.render(details)
        logger.info(f"gemini-pic-gen prompt: {clip_text(prompt, _LOG_PROMPT_CHARS)}")
        return prompt

    async def _progress(self, event: AstrMessageEvent, job: DrawJob) -> None:
        try:
            await event.send(MessageChain().message(f"🎨 收到，正在{job.action}，请稍候…"))
        except Exception as exc:  # a lost progress note must not cost the picture
            logger.warning(f"gemini-pic-gen: progress message not sent: {exc!r}")

    async def _generate(
        self, settings: Settings, request: GenerationRequest, deadline: Deadline
    ) -> GenerationResult:
        client = OpenRouterClient(
            self._http(),
            settings,
            self.store,
            pool=self._key_pool(settings),
            policy=self.retry_policy,
            cpu=self.cpu,
        )
        try:
            result = await client.generate(request, deadline)
        except ModelUnavailableError as exc:
            # Name the image models that do exist, so the admin knows what to switch to.
            raise await self.models.explain_missing_model(self._http(), settings, exc) from exc
        logger.info(
            f"gemini-pic-gen: {len(result.images)} image(s) from {result.model} "
            f"with key {result.key_mask}"
        )
        return result

    async def _deliver(
        self, event: AstrMessageEvent, result: GenerationResult, settings: Settings
    ) -> str:
        """Send the images; return a note for the model when delivery had to fall back."""
        paths = [image.path for image in result.images]
        if settings.use_file_service and await self._send_file_service_links(event, paths):
            return ""
        if should_push(settings, event.get_platform_name(), event):
            try:
                remote_paths = await push_images(paths, settings)
                await send_onebot_images(event, remote_paths)
                logger.info(f"gemini-pic-gen: pushed {len(paths)} image(s) to NapCat host")
                return ""
            except DeliveryError as exc:
                logger.warning(f"NapCat push to {exc.target} failed ({exc.detail}); sending inline")
                note = delivery_fallback_note(exc)
        else:
            note = ""
        chain = MessageChain()
        for path in paths:
            chain.file_image(str(path))
        await event.send(chain)
        return note

    async def _send_file_service_links(self, event: AstrMessageEvent, paths: list[Path]) -> bool:
        if not self.context.get_config().get("callback_api_base"):
            logger.warning("use_file_service is on but callback_api_base is not set; sending files")
            return False
        chain = MessageChain()
        for path in paths:
            url = await Image.fromFileSystem(str(path)).register_to_file_service()
            chain.chain.append(Image.fromURL(url))
        await event.send(chain)
        return True

    # --- command plumbing -----------------------------------------------------------------------

    async def _run_command(self, event: AstrMessageEvent, job: DrawJob) -> None:
        outcome = await self.draw(event, job)
        remarks = [outcome.message] if outcome.result is None else outcome.remarks()
        if remarks:
            await self._reply(event, "\n".join(remarks))
        event.stop_event()

    def _wake_prefix(self, event: AstrMessageEvent) -> str:
        """The prefix that wakes the bot in this chat (AstrBot's `wake_prefix`, default "/")."""
        try:
            prefixes = self.context.get_config(umo=event.unified_msg_origin).get("wake_prefix")
        except Exception:  # only cosmetic: help text falls back to the default
            return "/"
        return str(prefixes[0]) if isinstance(prefixes, list) and prefixes else ""

    @staticmethod
    async def _reply(event: AstrMessageEvent, text: str) -> None:
        await event.send(MessageChain().message(text))
        event.stop_event()

    async def _save_setting(self, event: AstrMessageEvent, done: str, **values: object) -> None:
        """Apply an admin's change, persist it, and tell the admin how that went."""
        async with self._config_lock:
            logger.info(f"gemini-pic-gen: admin {event.get_sender_id()} set {values}")
            try:
                await apply_and_save(self.config, values)
            except ConfigSaveError as exc:
                logger.error(f"gemini-pic-gen: {exc.detail}")
                return await self._reply(event, f"{done}。{user_message(exc)}")
        await self._reply(event, f"{done}，已保存到插件配置（网页面板中同步可见）。")
