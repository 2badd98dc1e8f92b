"""AstrBot plugin: Gemini image generation and editing through OpenRouter.

This class only registers the tool and the commands, turns an event into a job for the request
pipeline (utils/chat/pipeline.py) and the outcome into replies (utils/chat/texts.py).
"""

from __future__ import annotations

from pathlib import Path

from astrbot.api import logger
from astrbot.api.event import AstrMessageEvent, MessageChain, filter
from astrbot.api.star import Context, Star, StarTools

from .utils.chat import texts
from .utils.chat.admin import SettingsEditor
from .utils.chat.commands import (
    CMD_API_BASE,
    CMD_DRAW,
    CMD_EDIT,
    CMD_FIGURE,
    CMD_HELP,
    CMD_KEYS,
    CMD_MODEL,
    CMD_SETTINGS,
    CMD_STATS,
    command_argument,
    draw_argument,
    keys_argument,
    wake_prefix_of,
)
from .utils.chat.jobs import DrawJob, edit_job, figure_job, tool_job, with_options
from .utils.chat.permission import admin_command, refused
from .utils.chat.pipeline import DrawPipeline
from .utils.chat.timing import answer_within
from .utils.core.clock import SYSTEM_CLOCK, Clock
from .utils.core.errors import UnknownKeyError
from .utils.core.settings import Settings
from .utils.openrouter.retry_policy import RetryPolicy
from .utils.spend.service import SpendService

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
        self._clock = clock
        self._retry_policy = retry_policy
        self.editor = SettingsEditor(self.config)
        self._build_services()

    def _build_services(self) -> None:
        """What one run of the plugin (initialize() to terminate()) works with."""
        # The spend ledger lives in AstrBot's data directory for the plugin: it outlives reloads.
        self.spend = SpendService(StarTools.get_data_dir(), self.settings, clock=self._clock)
        self.pipeline = DrawPipeline(
            self.context,
            PLUGIN_DIR / "images",
            self.config,
            clock=self._clock,
            retry_policy=self._retry_policy,
            spend=self.spend.guard,
        )

    async def initialize(self) -> None:
        if self.pipeline.closed:  # started again after terminate(): nothing of the last run
            self._build_services()
        self.pipeline.open()
        await self.spend.start(self.context, self.pipeline)

    async def terminate(self) -> None:
        await self.pipeline.close()  # requests in flight finish and deliver first
        await self.spend.stop()  # after them: they are recorded too

    def settings(self) -> Settings:
        return Settings.from_config(self.config)

    # --- the LLM tool ---------------------------------------------------------------------------

    @filter.llm_tool(name="gemini-pic-gen")
    async def gemini_pic_gen(
        self,
        event: AstrMessageEvent,
        image_description: str = "",
        use_reference_images: bool | None = None,
        aspect_ratio: str = "",
        image_size: str = "",
        use_sender_avatar: bool = False,
        **extra: object,
    ) -> str:
        """使用 Gemini 图像模型根据文字描述生成图片，或根据用户发送/引用的图片进行修改。生成的图片会直接发送给用户。

        Args:
            image_description(string): 要生成或修改的图片内容的详细描述，保留用户原话中需要画进图里的文字
            use_reference_images(boolean): 是否使用参考图，默认为 true：用户消息、引用消息和合并转发消息里的图片，以及消息中被 @ 的人的头像（QQ 上自动加入，排在图片之后）；纯文字生图、用不到这些图片和头像时填 false
            aspect_ratio(string): 可选，图片宽高比，只能是 1:1、2:3、3:2、3:4、4:3、4:5、5:4、9:16、16:9、21:9、1:4、4:1、1:8、8:1 之一（后四种只有部分模型支持）；用户没有指定比例时不要填写
            image_size(string): 可选，图片尺寸，只能是 1K、2K、4K 之一（长边约 1024、2048、4096 像素，越大越慢越贵）；只有用户要求高清、2K、4K 等尺寸时才填写
            use_sender_avatar(boolean): 可选，用户明确要求用他自己的头像（如“用我的头像画…”“把我的头像做成手办”）时填 true，否则不要填写；被 @ 的人的头像不需要此参数
        """
        if extra:
            logger.debug(f"gemini-pic-gen ignored unexpected arguments: {sorted(extra)}")
        job = tool_job(
            image_description, use_reference_images, aspect_ratio, image_size, use_sender_avatar
        )
        request = self.pipeline.start(event, job, self.settings())
        outcome = await self.pipeline.outcome_within(request, answer_within(request.tool_timeout))
        return texts.still_working() if outcome is None else texts.tool_summary(outcome)

    # --- chat commands --------------------------------------------------------------------------

    @filter.command(CMD_DRAW)
    async def cmd_draw(self, event: AstrMessageEvent) -> None:
        """根据文字生成图片：/画图 [我的头像] [1K|2K|4K] [宽高比如 16:9] <描述>（@某人 用他的头像作参考图）"""
        arg = draw_argument(event.message_str, event.get_messages(), CMD_DRAW)
        if not arg.prompt:
            return await self._reply(event, texts.usage_draw())
        job = DrawJob(
            prompt=arg.prompt,
            use_sender_avatar=arg.own_avatar,
            image_size=arg.image_size,
            aspect_ratio=arg.aspect_ratio,
        )
        await self._run_command(event, job)

    @filter.command(CMD_EDIT)
    async def cmd_edit(self, event: AstrMessageEvent) -> None:
        """按描述修改图片：/改图 [1K|2K|4K] [宽高比] <描述>（附图、回复带图消息、@某人 或“我的头像”）"""
        arg = draw_argument(event.message_str, event.get_messages(), CMD_EDIT)
        if not arg.prompt:
            return await self._reply(event, texts.usage_edit())
        job = edit_job(arg.prompt, use_sender_avatar=arg.own_avatar)
        await self._run_command(event, with_options(job, arg))

    @filter.command(CMD_FIGURE)
    async def cmd_figure(self, event: AstrMessageEvent) -> None:
        """把图片里的角色做成手办照片：/手办化 [1K|2K|4K] [宽高比] [补充描述]（附图、@某人 或 /手办化 我）"""
        arg = draw_argument(event.message_str, event.get_messages(), CMD_FIGURE)
        job = figure_job(arg.prompt, use_sender_avatar=arg.own_avatar)
        await self._run_command(event, with_options(job, arg))

    @filter.command(CMD_HELP)
    async def cmd_help(self, event: AstrMessageEvent) -> None:
        """画图插件的指令说明"""
        prefix = wake_prefix_of(self.pipeline.event_config(event))
        await self._reply(event, texts.help_text(self.settings(), prefix))

    @admin_command
    @filter.command(CMD_MODEL)
    async def cmd_model(self, event: AstrMessageEvent) -> None:
        """（管理员）切换图像模型：/画图模型 <模型ID>；不带参数时列出图像模型、能力和价格"""
        if await self._refuse_non_admin(event, CMD_MODEL):
            return
        value = command_argument(event.message_str, CMD_MODEL)
        if not value:
            settings = self.settings()
            models, listed = await self.pipeline.image_models(settings)
            return await self._reply(event, texts.image_model_list(models, settings.model, listed))
        await self._reply(event, await self.editor.switch_model(event.get_sender_id(), value))

    @admin_command
    @filter.command(CMD_API_BASE)
    async def cmd_api_base(self, event: AstrMessageEvent) -> None:
        """（管理员）切换 API 地址：/画图接口 <地址|默认>"""
        if await self._refuse_non_admin(event, CMD_API_BASE):
            return
        value = command_argument(event.message_str, CMD_API_BASE)
        if not value:
            return await self._reply(event, texts.current_api_base(self.settings().api_base))
        await self._reply(event, await self.editor.switch_api_base(event.get_sender_id(), value))

    @admin_command
    @filter.command(CMD_SETTINGS)
    async def cmd_settings(self, event: AstrMessageEvent) -> None:
        """（管理员）查看画图插件当前设置，密钥已打码"""
        if await self._refuse_non_admin(event, CMD_SETTINGS):
            return
        await self._reply(event, texts.describe_settings(self.settings()))

    @admin_command
    @filter.command(CMD_KEYS, alias={"gemini_keys"})
    async def cmd_keys(self, event: AstrMessageEvent) -> None:
        """（管理员）密钥池：打码的密钥、状态与成功失败次数；/画图密钥 重置 [密钥末尾几位] 清除冷却、额度用尽和无效状态"""
        if await self._refuse_non_admin(event, CMD_KEYS):
            return
        settings = self.settings()
        argument = command_argument(event.message_str, CMD_KEYS)
        if argument:
            reset, tail = keys_argument(argument)
            if not reset:
                return await self._reply(event, texts.usage_keys())
            try:
                masked = self.pipeline.reset_keys(settings, tail)
            except UnknownKeyError as exc:
                return await self._reply(event, texts.user_message(exc))
            logger.info(f"gemini-pic-gen: admin {event.get_sender_id()} reset keys {masked}")
            status = texts.format_pool_status(self.pipeline.key_status(settings), settings.model)
            return await self._reply(event, texts.keys_reset(masked) + "\n" + status)
        await self._reply(
            event, texts.format_pool_status(self.pipeline.key_status(settings), settings.model)
        )

    @admin_command
    @filter.command(CMD_STATS)
    async def cmd_stats(self, event: AstrMessageEvent) -> None:
        """（管理员）画图统计：今天和近 7 天的图片数与花费（按群、用户、模型），各密钥剩余额度"""
        if await self._refuse_non_admin(event, CMD_STATS):
            return
        await self._reply(event, await self.spend.report_text(self.pipeline.http()))

    # --- plumbing -------------------------------------------------------------------------------

    async def _run_command(self, event: AstrMessageEvent, job: DrawJob) -> None:
        request = self.pipeline.start(event, job, self.settings())
        # Commands have no timeout of AstrBot's: wait for the whole run.
        outcome = await self.pipeline.outcome_within(request, request.deadline.remaining() + 5)
        asked = bool(job.image_size or job.aspect_ratio)
        remarks = texts.command_reply(outcome, asked) if outcome is not None else []
        if remarks:
            await self._reply(event, "\n".join(remarks))
        event.stop_event()

    async def _refuse_non_admin(self, event: AstrMessageEvent, command: str) -> bool:
        """Answer a non-admin's admin command with one sentence (utils/chat/permission.py)."""
        if not refused(event):
            return False
        sender = event.get_sender_id()
        logger.info(f"gemini-pic-gen: {sender} is not a bot admin: /{command} refused")
        prefix = wake_prefix_of(self.pipeline.event_config(event))
        await self._reply(event, texts.admin_only(prefix + command, str(sender)))
        return True

    @staticmethod
    async def _reply(event: AstrMessageEvent, text: str) -> None:
        await event.send(MessageChain().message(text))
        event.stop_event()
