"""AstrBot plugin: Gemini image generation and editing through OpenRouter.

This class only registers the tool and the commands, turns an event into a job for the request
pipeline (utils/chat/pipeline.py) and the outcome into replies (utils/chat/texts.py).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from astrbot.api import logger
from astrbot.api.event import AstrMessageEvent, MessageChain, filter
from astrbot.api.star import Context, Star

from .utils.chat import texts
from .utils.chat.admin import apply_and_save, parse_api_base, parse_model_id
from .utils.chat.commands import (
    CMD_API_BASE,
    CMD_DRAW,
    CMD_EDIT,
    CMD_FIGURE,
    CMD_HELP,
    CMD_KEYS,
    CMD_MODEL,
    CMD_SETTINGS,
    command_argument,
)
from .utils.chat.jobs import DrawJob, edit_job, figure_job
from .utils.chat.pipeline import DrawOutcome, DrawPipeline
from .utils.core.clock import SYSTEM_CLOCK, Clock
from .utils.core.coerce import coerce_bool, coerce_text
from .utils.core.errors import ConfigSaveError, PicGenError
from .utils.core.keys import KeyRedactingFilter, collect_api_keys
from .utils.core.settings import Settings, normalize_api_base
from .utils.imaging.cleanup import CleanupTask
from .utils.openrouter.retry_policy import RetryPolicy

PLUGIN_DIR = Path(__file__).resolve().parent


class GeminiImagePlugin(Star):
    def __init__(
        self,
        context: Context,
        config: dict | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        """AstrBot passes context and config; tests may add a virtual clock and a retry policy."""
        super().__init__(context)
        self.config = config if config is not None else {}
        self.pipeline = DrawPipeline(
            context, PLUGIN_DIR / "images", clock=clock, retry_policy=retry_policy
        )
        self.cleanup = CleanupTask(
            self.pipeline.store.directory, lambda: self.settings().retention_seconds
        )
        self._config_lock = asyncio.Lock()
        self._startup_check: asyncio.Task[None] | None = None
        self._redact_logs = KeyRedactingFilter(self._configured_keys)

    async def initialize(self) -> None:
        self._log().addFilter(self._redact_logs)
        self.cleanup.start()
        # The model check may wait on the network: never let it hold up AstrBot's start.
        self._startup_check = asyncio.create_task(
            self.pipeline.models.check_configured_model(self.pipeline.http(), self.settings())
        )

    async def terminate(self) -> None:
        await self.cleanup.stop()
        if self._startup_check is not None:
            self._startup_check.cancel()
        await self.pipeline.drain()  # requests in flight finish and deliver first
        await self.pipeline.close()
        self._log().removeFilter(self._redact_logs)

    @staticmethod
    def _log() -> logging.Logger:
        """The logger this plugin's modules log to (its own on 4.28, AstrBot's on 4.14): every
        record of it has its keys masked, tracebacks included."""
        return logging.getLogger(logger.name)

    def _configured_keys(self) -> tuple[str, ...]:
        return collect_api_keys(
            self.config.get("openrouter_api_keys"), self.config.get("openrouter_api_key", "")
        )

    def settings(self) -> Settings:
        return Settings.from_config(self.config)

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
        return texts.tool_summary(await self._draw(event, job))

    # --- chat commands --------------------------------------------------------------------------

    @filter.command(CMD_DRAW)
    async def cmd_draw(self, event: AstrMessageEvent) -> None:
        """根据文字生成图片：/画图 <描述>"""
        prompt = command_argument(event.message_str, CMD_DRAW)
        if not prompt:
            return await self._reply(event, texts.usage_draw())
        await self._run_command(event, DrawJob(prompt=prompt))

    @filter.command(CMD_EDIT)
    async def cmd_edit(self, event: AstrMessageEvent) -> None:
        """按描述修改图片：/改图 <描述>（附图或回复带图消息）"""
        prompt = command_argument(event.message_str, CMD_EDIT)
        if not prompt:
            return await self._reply(event, texts.usage_edit())
        await self._run_command(event, edit_job(prompt))

    @filter.command(CMD_FIGURE)
    async def cmd_figure(self, event: AstrMessageEvent) -> None:
        """把图片里的角色做成手办照片：/手办化 [补充描述]"""
        await self._run_command(event, figure_job(command_argument(event.message_str, CMD_FIGURE)))

    @filter.command(CMD_HELP)
    async def cmd_help(self, event: AstrMessageEvent) -> None:
        """画图插件的指令说明"""
        await self._reply(event, texts.help_text(self.settings(), self._wake_prefix(event)))

    @filter.permission_type(filter.PermissionType.ADMIN)
    @filter.command(CMD_MODEL)
    async def cmd_model(self, event: AstrMessageEvent) -> None:
        """（管理员）切换图像模型：/画图模型 <模型ID>"""
        value = command_argument(event.message_str, CMD_MODEL)
        if not value:
            return await self._reply(event, texts.current_model(self.settings().model))
        try:
            model = parse_model_id(value)
        except PicGenError as exc:
            return await self._reply(event, texts.user_message(exc))
        await self._save_setting(event, texts.model_switched(model), model_name=model)

    @filter.permission_type(filter.PermissionType.ADMIN)
    @filter.command(CMD_API_BASE)
    async def cmd_api_base(self, event: AstrMessageEvent) -> None:
        """（管理员）切换 API 地址：/画图接口 <地址|默认>"""
        value = command_argument(event.message_str, CMD_API_BASE)
        if not value:
            return await self._reply(event, texts.current_api_base(self.settings().api_base))
        try:
            api_base = parse_api_base(value)
        except PicGenError as exc:
            return await self._reply(event, texts.user_message(exc))
        done = texts.api_base_switched(normalize_api_base(api_base), official=not api_base)
        await self._save_setting(event, done, custom_api_base=api_base)

    @filter.permission_type(filter.PermissionType.ADMIN)
    @filter.command(CMD_SETTINGS)
    async def cmd_settings(self, event: AstrMessageEvent) -> None:
        """（管理员）查看画图插件当前设置，密钥已打码"""
        await self._reply(event, texts.describe_settings(self.settings()))

    @filter.permission_type(filter.PermissionType.ADMIN)
    @filter.command(CMD_KEYS, alias={"gemini_keys"})
    async def cmd_keys(self, event: AstrMessageEvent) -> None:
        """（管理员）查看密钥池：打码的密钥、状态（正常/冷却至某时/无效/额度用尽）、本次启动以来的成功与失败次数"""
        settings = self.settings()
        rows = self.pipeline.key_pool(settings).snapshot() if settings.api_keys else []
        await self._reply(event, texts.format_pool_status(rows, settings.model))

    # --- plumbing -------------------------------------------------------------------------------

    async def _draw(self, event: AstrMessageEvent, job: DrawJob) -> DrawOutcome:
        settings = self.settings()
        request = self.pipeline.start(event, job, settings, settings.request_timeout_budget_seconds)
        try:
            outcome = await request.wait(request.deadline.remaining() + 5.0)
        except asyncio.CancelledError:  # AstrBot gave up on the call: the picture still comes
            self.pipeline.detach(request)
            raise
        assert outcome is not None  # the run ends on its own deadline
        return outcome

    async def _run_command(self, event: AstrMessageEvent, job: DrawJob) -> None:
        remarks = texts.command_reply(await self._draw(event, job))
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
                return await self._reply(event, texts.setting_not_saved(done, exc))
        await self._reply(event, texts.setting_saved(done))
