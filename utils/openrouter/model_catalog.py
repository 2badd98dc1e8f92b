"""Which models the service lists, and which of them can output images (GET <base>/v1/models).

Used to turn a 404 into "this model id is unknown or retired; these image models exist", and to
warn at start when the configured model is not an image model. Never required: when the list
cannot be had, everything works as before, only without suggestions.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import aiohttp
from astrbot.api import logger

from ..core.clock import SYSTEM_CLOCK, Clock
from ..core.errors import ModelUnavailableError
from ..core.settings import Settings

CACHE_TTL = 600.0
FETCH_TIMEOUT = 8.0
# Models the user is most likely to want first when suggestions are listed.
_PREFERRED_PREFIX = "google/gemini"


@dataclass(frozen=True)
class ModelInfo:
    id: str
    # None when the service does not say (some gateways list bare ids).
    output_modalities: tuple[str, ...] | None

    @property
    def makes_images(self) -> bool:
        return self.output_modalities is not None and "image" in self.output_modalities


def parse_models(body: bytes) -> dict[str, ModelInfo]:
    """The `data` list of an OpenAI-style models answer; malformed entries are ignored."""
    data = json.loads(body)
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError("no data list in the models answer")
    models: dict[str, ModelInfo] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        architecture = entry.get("architecture")
        modalities = (
            architecture.get("output_modalities") if isinstance(architecture, dict) else None
        )
        outputs = (
            tuple(str(m).lower() for m in modalities) if isinstance(modalities, list) else None
        )
        models[entry["id"]] = ModelInfo(entry["id"], outputs)
    return models


def image_model_ids(models: dict[str, ModelInfo]) -> tuple[str, ...]:
    ids = [m.id for m in models.values() if m.makes_images]
    return tuple(sorted(ids, key=lambda i: (not i.startswith(_PREFERRED_PREFIX), i)))


class ModelCatalog:
    """The model list per API base, cached for `ttl` seconds; one fetch at a time."""

    def __init__(
        self,
        ttl: float = CACHE_TTL,
        timeout: float = FETCH_TIMEOUT,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._ttl = ttl
        self._timeout = timeout
        self._clock = clock
        self._cache: dict[str, tuple[float, dict[str, ModelInfo]]] = {}
        self._lock = asyncio.Lock()

    def forget(self) -> None:
        """Drop the cached lists (the next look-up fetches again)."""
        self._cache.clear()

    async def models(
        self, session: aiohttp.ClientSession, settings: Settings
    ) -> dict[str, ModelInfo] | None:
        """The listed models, or None when the list cannot be had (logged, never raised)."""
        url = settings.models_url
        async with self._lock:
            cached = self._cache.get(url)
            if cached and self._clock.monotonic() - cached[0] < self._ttl:
                return cached[1]
            try:
                models = await self._fetch(session, url, settings)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                logger.info(f"model list unavailable from {url}: {type(exc).__name__}: {exc}")
                return None
            self._cache[url] = (self._clock.monotonic(), models)
            return models

    async def _fetch(
        self, session: aiohttp.ClientSession, url: str, settings: Settings
    ) -> dict[str, ModelInfo]:
        # OpenRouter lists models without a key; compatible gateways often want one.
        headers = {"Authorization": f"Bearer {settings.api_keys[0]}"} if settings.api_keys else {}
        async with session.get(
            url, headers=headers, timeout=aiohttp.ClientTimeout(total=self._timeout)
        ) as response:
            if response.status != 200:
                raise ValueError(f"HTTP {response.status}")
            body = await response.read()
        return parse_models(body)

    async def explain_missing_model(
        self,
        session: aiohttp.ClientSession,
        settings: Settings,
        error: ModelUnavailableError,
    ) -> ModelUnavailableError:
        """The same error with the image-capable models of the list as suggestions."""
        models = await self.models(session, settings)
        if not models:
            return error
        suggestions = tuple(i for i in image_model_ids(models) if i != error.model)
        if error.model in models:
            logger.warning(
                f"model {error.model} is listed but answered 404 (no endpoints right now?)"
            )
        return ModelUnavailableError(error.detail, error.model, suggestions)

    async def check_configured_model(
        self, session: aiohttp.ClientSession, settings: Settings
    ) -> None:
        """Log a warning when the configured model is missing or cannot output images."""
        models = await self.models(session, settings)
        if not models:
            return
        info = models.get(settings.model)
        images = image_model_ids(models)
        hint = f"image models listed: {', '.join(images[:8])}" if images else ""
        if info is None:
            logger.warning(
                f"configured model {settings.model} is not listed at {settings.models_url}: "
                f"unknown or retired. {hint}"
            )
        elif info.output_modalities is not None and not info.makes_images:
            logger.warning(
                f"configured model {settings.model} does not list image output "
                f"(outputs: {', '.join(info.output_modalities)}). {hint}"
            )
