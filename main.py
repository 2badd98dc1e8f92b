"""AstrBot plugin: Gemini image generation and editing through OpenRouter.

This class only registers the tool and the commands, chooses the chat's language, turns an
event into a job for the request pipeline (utils/chat/pipeline.py) and the outcome into replies
(utils/chat/texts/).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from astrbot.api import logger
from astrbot.api.event import AstrMessageEvent, MessageChain, filter
from astrbot.api.star import Context, Star, StarTools

from .utils.chat.admin import SettingsEditor
from .utils.chat.commands import command_argument, draw_argument, keys_argument, wake_prefix_of
from .utils.chat.jobs import DrawJob, edit_job, figure_job, tool_job, with_options
from .utils.chat.llm_tool import TOOL_NAME, describe_tool
from .utils.chat.permission import admin_command, refused
from .utils.chat.pipeline import DrawPipeline
from .utils.chat.texts import admin, keys, models, replies, spend, tool
from .utils.chat.texts import command_names as cmd
from .utils.chat.texts import help as help_texts
from .utils.chat.texts.failures import user_message
from .utils.chat.texts.language import Lang, chat_lang
from .utils.chat.timing import answer_within
from .utils.core.clock import SYSTEM_CLOCK, Clock
from .utils.core.errors import UnknownKeyError
from .utils.core.settings import Settings
from .utils.openrouter.retry_policy import RetryPolicy
from .utils.spend.service import SpendService

PLUGIN_DIR = Path(__file__).resolve().parent


class GeminiImagePlugin(Star):  # type: ignore[misc]  # Star is Any: AstrBot is untyped
    def __init__(
        self,
        context: Context,
        config: dict[str, Any] | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        """AstrBot passes context and config; tests may add a virtual clock and a retry policy."""
        super().__init__(context)
        self.config = config if config is not None else {}
        self._clock = clock
        self._retry_policy = retry_policy
        self.editor = SettingsEditor(self.config)
        self._build_services()

    def _build_services(self) -> None:
        """What one run of the plugin (initialize() to terminate()) works with."""
        # The spend ledger and the conversation memory live in AstrBot's data directory for the
        # plugin: they outlive reloads.
        data_dir = Path(StarTools.get_data_dir())
        self.spend = SpendService(data_dir, self.settings, clock=self._clock)
        self.pipeline = DrawPipeline(
            self.context,
            PLUGIN_DIR / "images",
            self.config,
            data_dir=data_dir,
            clock=self._clock,
            retry_policy=self._retry_policy,
            spend=self.spend.guard,
        )

    async def initialize(self) -> None:
        if self.pipeline.closed:  # started again after terminate(): nothing of the last run
            self._build_services()
        # What the chat model reads about the tool, in the configured language.
        text = tool.tool_text(self.settings().reply_lang)
        describe_tool(self.context.get_llm_tool_manager(), type(self).gemini_pic_gen, text)
        self.pipeline.open()
        await self.spend.start(self.context, self.pipeline.shared)

    async def terminate(self) -> None:
        """Unload (also on every config save in the panel, which waits for it): a few seconds
        for the requests in flight at most. Any still running then finish on this instance's
        resources, the ledger included, which are let go when the last of them ends."""
        self.spend.close_page()  # the page stops using this instance first
        await self.pipeline.close(then=self.spend.close)

    def settings(self) -> Settings:
        return Settings.from_config(self.config)

    @staticmethod
    def _lang(event: AstrMessageEvent, settings: Settings) -> Lang:
        """The language of this tool call or command: chosen once, passed to every text."""
        return chat_lang(settings.reply_lang, event)

    # --- the LLM tool ---------------------------------------------------------------------------

    # AstrBot reads the arguments' types from the docstring at import; what the chat model reads
    # (in the configured language) is set at initialize() from utils/chat/texts/tool.py.
    @filter.llm_tool(name=TOOL_NAME)
    async def gemini_pic_gen(
        self,
        event: AstrMessageEvent,
        image_description: str = "",
        use_reference_images: bool | None = None,
        aspect_ratio: str = "",
        image_size: str = "",
        use_sender_avatar: bool = False,
        continue_last_picture: bool = False,
        **extra: object,
    ) -> str:
        """Makes a picture from a description, or edits the pictures the user sent or quoted.

        Args:
            image_description(string): what to draw, or what to change
            use_reference_images(boolean): use the pictures and avatars of the message
            aspect_ratio(string): aspect ratio, e.g. 16:9
            image_size(string): 1K, 2K or 4K
            use_sender_avatar(boolean): use the sender's own avatar
            continue_last_picture(boolean): change the last picture made in this conversation
        """
        if extra:
            logger.debug(f"gemini-pic-gen ignored unexpected arguments: {sorted(extra)}")
        job = tool_job(
            image_description,
            use_reference_images,
            aspect_ratio,
            image_size,
            use_sender_avatar,
            continue_last_picture,
        )
        settings = self.settings()
        lang = self._lang(event, settings)
        request = self.pipeline.start(event, job, settings, lang)
        outcome = await self.pipeline.outcome_within(request, answer_within(request.tool_timeout))
        if outcome is None:
            return replies.still_working(lang)
        return replies.tool_summary(lang, outcome)

    # --- chat commands (Chinese names, English aliases: utils/chat/texts/command_names.py) ------

    @filter.command(cmd.DRAW.zh, alias=cmd.DRAW.aliases)
    async def cmd_draw(self, event: AstrMessageEvent) -> None:
        """根据文字生成图片：/画图 [我的头像] [1K|2K|4K] [宽高比如 16:9] <描述>（@某人 用他的头像作参考图）"""
        settings = self.settings()
        lang = self._lang(event, settings)
        arg = draw_argument(event.message_str, event.get_messages(), cmd.DRAW)
        if not arg.prompt:
            return await self._reply(event, help_texts.usage_draw(lang))
        job = DrawJob(prompt=arg.prompt, use_sender_avatar=arg.own_avatar)
        await self._run_command(event, with_options(job, arg), settings, lang)

    @filter.command(cmd.EDIT.zh, alias=cmd.EDIT.aliases)
    async def cmd_edit(self, event: AstrMessageEvent) -> None:
        """按描述修改图片：/改图 [1K|2K|4K] [宽高比] <描述>（附图、回复带图消息、@某人 或“我的头像”）"""
        settings = self.settings()
        lang = self._lang(event, settings)
        arg = draw_argument(event.message_str, event.get_messages(), cmd.EDIT)
        if not arg.prompt:
            return await self._reply(event, help_texts.usage_edit(lang))
        job = edit_job(arg.prompt, use_sender_avatar=arg.own_avatar)
        await self._run_command(event, with_options(job, arg), settings, lang)

    @filter.command(cmd.FIGURE.zh, alias=cmd.FIGURE.aliases)
    async def cmd_figure(self, event: AstrMessageEvent) -> None:
        """把图片里的角色做成手办照片：/手办化 [1K|2K|4K] [宽高比] [补充描述]（附图、@某人 或 /手办化 我）"""
        settings = self.settings()
        lang = self._lang(event, settings)
        arg = draw_argument(event.message_str, event.get_messages(), cmd.FIGURE)
        job = figure_job(arg.prompt, use_sender_avatar=arg.own_avatar)
        await self._run_command(event, with_options(job, arg), settings, lang)

    @filter.command(cmd.HELP.zh, alias=cmd.HELP.aliases)
    async def cmd_help(self, event: AstrMessageEvent) -> None:
        """画图插件的指令说明"""
        settings = self.settings()
        prefix = wake_prefix_of(self.pipeline.event_config(event))
        await self._reply(
            event, help_texts.help_text(self._lang(event, settings), settings, prefix)
        )

    @admin_command
    @filter.command(cmd.MODEL.zh, alias=cmd.MODEL.aliases)
    async def cmd_model(self, event: AstrMessageEvent) -> None:
        """（管理员）切换图像模型：/画图模型 <模型ID>；不带参数时列出图像模型、能力和价格"""
        settings = self.settings()
        lang = await self._admin_lang(event, cmd.MODEL, settings)
        if lang is None:
            return
        value = command_argument(event.message_str, cmd.MODEL)
        if not value:
            found, listed = await self.pipeline.image_models(settings)
            text = models.image_model_list(lang, found, settings.model, listed)
            return await self._reply(event, text)
        await self._reply(event, await self.editor.switch_model(lang, event.get_sender_id(), value))

    @admin_command
    @filter.command(cmd.API_BASE.zh, alias=cmd.API_BASE.aliases)
    async def cmd_api_base(self, event: AstrMessageEvent) -> None:
        """（管理员）切换 API 地址：/画图接口 <地址|默认>"""
        settings = self.settings()
        lang = await self._admin_lang(event, cmd.API_BASE, settings)
        if lang is None:
            return
        value = command_argument(event.message_str, cmd.API_BASE)
        if not value:
            return await self._reply(event, admin.current_api_base(lang, settings.api_base))
        sender = event.get_sender_id()
        await self._reply(event, await self.editor.switch_api_base(lang, sender, value))

    @admin_command
    @filter.command(cmd.SETTINGS.zh, alias=cmd.SETTINGS.aliases)
    async def cmd_settings(self, event: AstrMessageEvent) -> None:
        """（管理员）查看画图插件当前设置，密钥已打码"""
        settings = self.settings()
        lang = await self._admin_lang(event, cmd.SETTINGS, settings)
        if lang is None:
            return
        paused = self.pipeline.shared.translator.paused_until()
        await self._reply(event, admin.describe_settings(lang, settings, paused))

    @admin_command
    @filter.command(cmd.KEYS.zh, alias=cmd.KEYS.aliases)
    async def cmd_keys(self, event: AstrMessageEvent) -> None:
        """（管理员）密钥池：打码的密钥、状态与成功失败次数；/画图密钥 重置 [密钥末尾几位] 清除冷却、额度用尽和无效状态"""
        settings = self.settings()
        lang = await self._admin_lang(event, cmd.KEYS, settings)
        if lang is None:
            return
        argument = command_argument(event.message_str, cmd.KEYS)
        reset, tail = keys_argument(argument)
        if argument and not reset:
            prefix = wake_prefix_of(self.pipeline.event_config(event))
            return await self._reply(event, keys.usage_keys(lang, prefix))
        lines = []
        if reset:
            try:
                masked = self.pipeline.reset_keys(settings, tail)
            except UnknownKeyError as exc:
                return await self._reply(event, user_message(lang, exc))
            logger.info(f"gemini-pic-gen: admin {event.get_sender_id()} reset keys {masked}")
            lines.append(keys.keys_reset(lang, masked))
        rows = self.pipeline.key_status(settings)
        lines.append(keys.format_pool_status(lang, rows, settings.model))
        await self._reply(event, "\n".join(lines))

    @admin_command
    @filter.command(cmd.STATS.zh, alias=cmd.STATS.aliases)
    async def cmd_stats(self, event: AstrMessageEvent) -> None:
        """（管理员）画图统计：今天和近 7 天的图片数与花费（按群、用户、模型），各密钥剩余额度"""
        lang = await self._admin_lang(event, cmd.STATS, self.settings())
        if lang is None:
            return
        stats = await self.spend.stats()
        await self._reply(event, spend.stats_text(lang, stats))

    # --- plumbing -------------------------------------------------------------------------------

    async def _run_command(
        self, event: AstrMessageEvent, job: DrawJob, settings: Settings, lang: Lang
    ) -> None:
        request = self.pipeline.start(event, job, settings, lang)
        # Commands have no timeout of AstrBot's: wait for the whole run.
        outcome = await self.pipeline.outcome_within(request, request.deadline.remaining() + 5)
        asked = bool(job.image_size or job.aspect_ratio)
        remarks = replies.command_reply(lang, outcome, asked) if outcome is not None else []
        if remarks:
            await self._reply(event, "\n".join(remarks))
        event.stop_event()

    async def _admin_lang(
        self, event: AstrMessageEvent, command: cmd.Command, settings: Settings
    ) -> Lang | None:
        """The language of an admin command; None when a non-admin sent it, answered here with
        one sentence (utils/chat/permission.py)."""
        lang = self._lang(event, settings)
        if not refused(event):
            return lang
        sender = str(event.get_sender_id())
        logger.info(f"gemini-pic-gen: {sender} is not a bot admin: /{command.zh} refused")
        prefix = wake_prefix_of(self.pipeline.event_config(event))
        await self._reply(event, admin.admin_only(lang, prefix + command(lang), sender))
        return None

    @staticmethod
    async def _reply(event: AstrMessageEvent, text: str) -> None:
        await event.send(MessageChain().message(text))
        event.stop_event()
