"""Which models the service lists, and which of them can output images (GET <base>/v1/models).

Used to turn a 404 into "this model id is unknown or retired; these image models exist", to
warn at start when the configured model is not an image model, and for what the image models can
do and cost (utils/openrouter/capabilities.py). Never required: when the list cannot be had,
everything works as before, only without suggestions, prices and listed capabilities.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from astrbot.api import logger

from ..core.clock import SYSTEM_CLOCK, Clock
from ..core.errors import ModelUnavailableError
from ..core.image_options import normalize_aspect_ratio, normalize_image_size
from ..core.settings import Settings
from ..core.urls import display_url

CACHE_TTL = 600.0
FETCH_TIMEOUT = 8.0
# Models the user is most likely to want first when suggestions are listed.
_PREFERRED_PREFIX = "google/gemini"
# OpenRouter lists only models with text output unless asked for all (image-only models too).
LIST_QUERY = {"output_modalities": "all"}


@dataclass(frozen=True)
class ModelPrice:
    """What the list says a model costs, in USD: per token, `request` per request.

    None where the list does not say (or says -1, OpenRouter's "varies" for router models).
    """

    prompt: float | None = None
    completion: float | None = None
    image_input: float | None = None  # the list's `image`: per input image token
    image_output: float | None = None  # per output image token, where listed
    request: float | None = None

    @property
    def known(self) -> bool:
        return any(v is not None for v in (self.prompt, self.completion, self.image_output))


@dataclass(frozen=True)
class ModelInfo:
    id: str
    # None when the service does not say (some gateways list bare ids).
    output_modalities: tuple[str, ...] | None
    name: str = ""
    input_modalities: tuple[str, ...] | None = None
    price: ModelPrice | None = None
    # The values the list declares for image_config (None: it does not say). OpenRouter's chat
    # model list does not; an entry shaped like its image model list (`supported_parameters` as
    # {name: {"type": "enum", "values": [...]}}) does, and so may a gateway.
    image_sizes: tuple[str, ...] | None = None
    aspect_ratios: tuple[str, ...] | None = None

    @property
    def makes_images(self) -> bool:
        return self.output_modalities is not None and "image" in self.output_modalities

    @property
    def takes_images(self) -> bool | None:
        """Whether it reads input images (needed for editing); None when the list does not say."""
        if self.input_modalities is None:
            return None
        return "image" in self.input_modalities


def _modalities(value: object) -> tuple[str, ...] | None:
    return tuple(str(m).lower() for m in value) if isinstance(value, list) else None


def _per_unit(value: object) -> float | None:
    try:
        number = float(str(value))
    except (TypeError, ValueError):
        return None
    return number if number >= 0 and number == number else None


def _price(pricing: object) -> ModelPrice | None:
    if not isinstance(pricing, dict):
        return None
    return ModelPrice(
        prompt=_per_unit(pricing.get("prompt")),
        completion=_per_unit(pricing.get("completion")),
        image_input=_per_unit(pricing.get("image")),
        image_output=_per_unit(pricing.get("image_output")),
        request=_per_unit(pricing.get("request")),
    )


def _declared(
    parameters: object, names: tuple[str, ...], normalize: Callable[[object], str | None]
) -> tuple[str, ...] | None:
    """The values a dict-shaped `supported_parameters` declares for one option, canonical and
    deduplicated; values we do not know are left out. None when it declares nothing."""
    if not isinstance(parameters, dict):
        return None
    for name in names:
        spec = parameters.get(name)
        values = spec.get("values") if isinstance(spec, dict) else spec
        if isinstance(values, list):
            found = (normalize(v) for v in values if isinstance(v, str))
            return tuple(dict.fromkeys(v for v in found if v))
    return None


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
        if not isinstance(architecture, dict):
            architecture = {}
        parameters = entry.get("supported_parameters")
        name = entry.get("name")
        models[entry["id"]] = ModelInfo(
            entry["id"],
            _modalities(architecture.get("output_modalities")),
            name=name.strip() if isinstance(name, str) else "",
            input_modalities=_modalities(architecture.get("input_modalities")),
            price=_price(entry.get("pricing")),
            image_sizes=_declared(parameters, ("image_size", "resolution"), normalize_image_size),
            aspect_ratios=_declared(parameters, ("aspect_ratio",), normalize_aspect_ratio),
        )
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

    def cached(self, settings: Settings) -> dict[str, ModelInfo] | None:
        """The list fetched last for this API base, however old; None if none was. Never waits:
        a request uses it for capabilities without fetching (the start-up check fetches it)."""
        cached = self._cache.get(settings.models_url)
        return cached[1] if cached else None

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
                logger.info(
                    f"model list unavailable from {display_url(url)}: {type(exc).__name__}: {exc}"
                )
                return None
            self._cache[url] = (self._clock.monotonic(), models)
            return models

    async def _fetch(
        self, session: aiohttp.ClientSession, url: str, settings: Settings
    ) -> dict[str, ModelInfo]:
        # OpenRouter lists models without a key; compatible gateways often want one.
        headers = {"Authorization": f"Bearer {settings.api_keys[0]}"} if settings.api_keys else {}
        async with session.get(
            url,
            params=LIST_QUERY,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
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
                f"configured model {settings.model} is not listed at {display_url(settings.models_url)}: "
                f"unknown or retired. {hint}"
            )
        elif info.output_modalities is not None and not info.makes_images:
            logger.warning(
                f"configured model {settings.model} does not list image output "
                f"(outputs: {', '.join(info.output_modalities)}). {hint}"
            )
