"""AstrBot plugin: Gemini image generation and editing through OpenRouter."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import aiohttp
from astrbot.api import logger
from astrbot.api.event import AstrMessageEvent, MessageChain, filter
from astrbot.api.star import Context, Star

from .utils.aspect_ratio import resolve_aspect_ratio
from .utils.cleanup import CleanupTask
from .utils.errors import MissingPromptError, ModelUnavailableError, PicGenError, user_message
from .utils.image_store import ImageStore
from .utils.keys import redact_keys
from .utils.model_catalog import ModelCatalog
from .utils.reference_images import ReferenceOptions, References, references_for_request
from .utils.settings import Settings
from .utils.tool_args import coerce_bool, coerce_text
from .utils.ttp import GenerationRequest, GenerationResult, OpenRouterClient
from .utils.workers import CpuPool

PLUGIN_DIR = Path(__file__).resolve().parent


class GeminiImagePlugin(Star):
    def __init__(self, context: Context, config: dict | None = None) -> None:
        super().__init__(context)
        self.config = config if config is not None else {}
        self.store = ImageStore(PLUGIN_DIR / "images")
        self.pool = CpuPool()  # Pillow/base64 work of every request, off the event loop
        self.models = ModelCatalog()
        self.cleanup = CleanupTask(self.store.directory, lambda: self.settings().retention_seconds)
        self._session: aiohttp.ClientSession | None = None
        self._background: set[asyncio.Task[None]] = set()

    async def initialize(self) -> None:
        self._http()
        self.cleanup.start()
        # The model check may wait on the network: never let it hold up AstrBot's start.
        self._spawn(self.models.check_configured_model(self._http(), self.settings()))

    async def terminate(self) -> None:
        await self.cleanup.stop()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self.pool.close()
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

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
        settings = self.settings()
        try:
            prompt = coerce_text(image_description)
            if not prompt:
                raise MissingPromptError("empty image_description")
            ratio = resolve_aspect_ratio(aspect_ratio, settings.aspect_ratio)
            references = await references_for_request(
                self._http(),
                event.get_messages(),
                (event.message_str, prompt),
                coerce_bool(use_reference_images, default=True),
                ReferenceOptions.from_settings(settings),
                self.pool,
            )
            request = GenerationRequest(prompt, ratio, references.data_urls)
            result = await self._generate(settings, request)
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
        return self._summary(result, references)

    @staticmethod
    def _summary(result: GenerationResult, references: References) -> str:
        """The text handed back to the chat model, which relays what matters to the user."""
        parts = [f"已生成 {len(result.images)} 张图片并发送给用户。"]
        if references.images:
            parts.append(f"参考了 {len(references.images)} 张图片。")
        parts.extend(user_message(problem) for problem in references.problems)
        if result.discarded:
            parts.append(f"另有 {result.discarded} 张返回的图片数据损坏，已丢弃。")
        if result.text:
            parts.append(f"模型附言：{result.text[:200]}")
        return "".join(parts)

    async def _generate(self, settings: Settings, request: GenerationRequest) -> GenerationResult:
        client = OpenRouterClient(self._http(), settings, self.store, self.pool)
        try:
            result = await client.generate(request)
        except ModelUnavailableError as exc:
            # Name the image models that do exist, so the admin knows what to switch to.
            raise await self.models.explain_missing_model(self._http(), settings, exc) from exc
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
