"""AstrBot plugin: Gemini image generation and editing through OpenRouter."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from astrbot.api import logger
from astrbot.api.event import AstrMessageEvent, MessageChain, filter
from astrbot.api.message_components import Image
from astrbot.api.star import Context, Star

from .utils.delivery import push_images, send_onebot_images, should_push
from .utils.errors import (
    DeliveryError,
    MissingPromptError,
    PicGenError,
    delivery_fallback_note,
    user_message,
)
from .utils.image_store import ImageStore
from .utils.keys import redact_keys
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
        try:
            prompt = coerce_text(image_description)
            if not prompt:
                raise MissingPromptError("empty image_description")
            coerce_bool(use_reference_images, default=True)
            result = await self._generate(settings, GenerationRequest(prompt=prompt))
            note = await self._deliver(event, result, settings)
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
        return (
            f"已生成 {count} 张图片并发送给用户。"
            + note
            + (f"模型附言：{result.text[:200]}" if result.text else "")
        )

    async def _generate(self, settings: Settings, request: GenerationRequest) -> GenerationResult:
        client = OpenRouterClient(self._http(), settings, self.store)
        result = await client.generate(request)
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
