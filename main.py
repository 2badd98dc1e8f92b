"""AstrBot plugin: Gemini image generation and editing through OpenRouter."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from astrbot.api import logger
from astrbot.api.event import AstrMessageEvent, MessageChain, filter
from astrbot.api.star import Context, Star

from .utils.deadline import Deadline
from .utils.errors import MissingPromptError, PicGenError, user_message
from .utils.image_store import ImageStore
from .utils.key_pool import KeyPool, format_pool_status
from .utils.keys import mask_key, redact_keys
from .utils.retry_policy import RetryPolicy
from .utils.settings import Settings
from .utils.tool_args import coerce_bool, coerce_text
from .utils.ttp import GenerationRequest, GenerationResult, OpenRouterClient

PLUGIN_DIR = Path(__file__).resolve().parent


class GeminiImagePlugin(Star):
    def __init__(self, context: Context, config: dict | None = None) -> None:
        super().__init__(context)
        self.config = config if config is not None else {}
        self.store = ImageStore(PLUGIN_DIR / "images")
        self._session: aiohttp.ClientSession | None = None
        # Retry timing and its clock; tests swap in a policy with a recording clock.
        self.retry_policy = RetryPolicy()
        # Shared by all requests of this instance; built on first use, rebuilt on key changes.
        self.key_pool: KeyPool | None = None

    async def initialize(self) -> None:
        self._http()

    async def terminate(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _http(self) -> aiohttp.ClientSession:
        # One session per plugin instance: connection reuse across requests, closed on unload.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

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

    @filter.llm_tool(name="gemini-pic-gen")
    async def gemini_pic_gen(
        self,
        event: AstrMessageEvent,
        image_description: str = "",
        use_reference_images: bool = True,
        **extra: object,
    ) -> str:
        """使用 Gemini 图像模型根据文字描述生成图片，或根据用户发送/引用的图片进行修改。生成的图片会直接发送给用户。

        Args:
            image_description(string): 要生成或修改的图片内容的详细描述，保留用户原话中需要画进图里的文字
            use_reference_images(boolean): 是否使用用户消息及其引用消息中的图片作为参考图，默认为 true；纯文字生图时填 false
        """
        if extra:
            logger.debug(f"gemini-pic-gen ignored unexpected arguments: {sorted(extra)}")
        settings = self.settings()
        # The whole run (every step, every try) must end inside AstrBot's tool-call timeout.
        deadline = Deadline.start(settings.request_timeout_budget_seconds, self.retry_policy.clock)
        try:
            prompt = coerce_text(image_description)
            if not prompt:
                raise MissingPromptError("empty image_description")
            coerce_bool(use_reference_images, default=True)
            result = await self._generate(settings, GenerationRequest(prompt=prompt), deadline)
            await self._deliver(event, result)
        except PicGenError as exc:
            logger.warning(
                f"gemini-pic-gen failed: {type(exc).__name__}: "
                f"{redact_keys(exc.detail, settings.api_keys)}"
            )
            return user_message(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug of ours: log it, never show it
            logger.error(
                f"gemini-pic-gen crashed: {redact_keys(repr(exc), settings.api_keys)}",
                exc_info=True,
            )
            return user_message(exc)
        count = len(result.images)
        return f"已生成 {count} 张图片并发送给用户。" + (
            f"模型附言：{result.text[:200]}" if result.text else ""
        )

    async def _generate(
        self, settings: Settings, request: GenerationRequest, deadline: Deadline
    ) -> GenerationResult:
        client = OpenRouterClient(
            self._http(),
            settings,
            self.store,
            pool=self._key_pool(settings),
            policy=self.retry_policy,
        )
        result = await client.generate(request, deadline)
        logger.info(
            f"gemini-pic-gen: {len(result.images)} image(s) from {result.model} "
            f"with key {result.key_mask}"
        )
        return result

    async def _deliver(self, event: AstrMessageEvent, result: GenerationResult) -> None:
        chain = MessageChain()
        for image in result.images:
            chain.file_image(str(image.path))
        await event.send(chain)

    @filter.command("gemini_keys")
    @filter.permission_type(filter.PermissionType.ADMIN)
    async def gemini_keys(self, event: AstrMessageEvent):
        """（仅管理员）查看 OpenRouter 密钥池：每个密钥的脱敏形式、状态（正常 / 限流冷却至某时 / 无效 / 额度用尽）以及本次启动以来的成功与失败次数。用法：/gemini_keys"""
        settings = self.settings()
        rows = self._key_pool(settings).snapshot() if settings.api_keys else []
        yield event.plain_result(format_pool_status(rows, settings.model))
