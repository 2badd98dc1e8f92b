"""Which models the service lists, and what they can do and cost.

Two lists, one shape: chat completions' (GET <base>/v1/models, every output modality) and the
Image API's discovery (GET <base>/v1/images/models, typed `supported_parameters`), plus the
per-provider records of one Image API model with its prices (GET .../images/models/{id}/endpoints,
parsed by image_pricing). Used to choose where a model is asked and how
(utils/openrouter/capabilities.py), to turn a 404 into "this model id is unknown or retired;
these image models exist", to warn at start when the configured model is not an image model,
and for /画图模型. Never required: when a list cannot be had, the built-in table stands in, only
without suggestions, prices and listed capabilities. A 404 on discovery means the service has no
Image API (a relay): an empty list, cached like any answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp
from astrbot.api import logger

from ..core.clock import SYSTEM_CLOCK, Clock
from ..core.errors import ModelUnavailableError
from ..core.image_options import normalize_aspect_ratio, normalize_image_size
from ..core.settings import Settings
from ..core.urls import display_url
from ..core.workers import CpuPool
from .image_pricing import ImageEndpoint, parse_endpoints

CACHE_TTL = 600.0
# A list that could not be had is asked for again only after this long: a relay without it (or
# a service that is down) must not cost every request a wait.
FAILURE_TTL = 60.0
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
    # The Image API's `input_references` and `n` ranges (None: not declared).
    max_references: int | None = None
    n_range: tuple[int, int] | None = None

    @property
    def makes_images(self) -> bool:
        return self.output_modalities is not None and "image" in self.output_modalities

    @property
    def takes_images(self) -> bool | None:
        """Whether it reads input images (needed for editing); None when the list does not say."""
        if self.max_references == 0:
            return False
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


def _declared_range(parameters: object, name: str) -> tuple[int, int] | None:
    """A `{"type": "range", "min": a, "max": b}` descriptor as whole numbers, or None."""
    spec = parameters.get(name) if isinstance(parameters, dict) else None
    if not isinstance(spec, dict):
        return None
    low, high = spec.get("min"), spec.get("max")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        return None
    return (max(0, int(low)), max(0, int(high)))  # type: ignore[arg-type]


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
        references = _declared_range(parameters, "input_references")
        name = entry.get("name")
        models[entry["id"]] = ModelInfo(
            entry["id"],
            _modalities(architecture.get("output_modalities")),
            name=name.strip() if isinstance(name, str) else "",
            input_modalities=_modalities(architecture.get("input_modalities")),
            price=_price(entry.get("pricing")),
            image_sizes=_declared(parameters, ("image_size", "resolution"), normalize_image_size),
            aspect_ratios=_declared(parameters, ("aspect_ratio",), normalize_aspect_ratio),
            max_references=references[1] if references else None,
            n_range=_declared_range(parameters, "n"),
        )
    return models


def image_model_ids(models: dict[str, ModelInfo]) -> tuple[str, ...]:
    ids = [m.id for m in models.values() if m.makes_images]
    return tuple(sorted(ids, key=lambda i: (not i.startswith(_PREFERRED_PREFIX), i)))


@dataclass(frozen=True)
class Listings:
    """What the service lists: chat completions' models and the Image API's (None: that list
    could not be had; empty: the service has none, e.g. a relay without an Image API)."""

    chat: dict[str, ModelInfo] | None = None
    images: dict[str, ModelInfo] | None = None


_FetchError = (aiohttp.ClientError, asyncio.TimeoutError, ValueError)


class _NotThere(Exception):
    """The service answered 404 for a list: it has none."""


class ModelCatalog:
    """The lists per API base, each cached for `ttl` seconds (a failure for FAILURE_TTL); one
    fetch of each at a time. An answer is parsed on `cpu` (the chat model list is 1-2 MB of
    JSON: tens of ms the event loop must not stall for), or in a thread without one."""

    def __init__(
        self,
        ttl: float = CACHE_TTL,
        timeout: float = FETCH_TIMEOUT,
        clock: Clock = SYSTEM_CLOCK,
        cpu: CpuPool | None = None,
    ) -> None:
        self._ttl = ttl
        self._timeout = timeout
        self._clock = clock
        self._cpu = cpu
        # url -> (when, what it answered; None for a failure)
        self._cache: dict[str, tuple[float, object]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def forget(self) -> None:
        """Drop the cached lists (the next look-up fetches again)."""
        self._cache.clear()

    async def models(
        self, session: aiohttp.ClientSession, settings: Settings, limit: float | None = None
    ) -> dict[str, ModelInfo] | None:
        """Chat completions' models, or None when the list cannot be had (logged, never
        raised). `limit` caps the wait (a request's time left)."""
        url = settings.models_url
        found = await self._get(session, settings, url, parse_models, limit, LIST_QUERY)
        return found if isinstance(found, dict) else None

    async def image_models(
        self, session: aiohttp.ClientSession, settings: Settings, limit: float | None = None
    ) -> dict[str, ModelInfo] | None:
        """The Image API's models ({} when the service has no Image API), or None."""
        url = settings.image_models_url
        found = await self._get(session, settings, url, parse_models, limit, {}, if_absent={})
        return found if isinstance(found, dict) else None

    async def listings(
        self, session: aiohttp.ClientSession, settings: Settings, limit: float | None = None
    ) -> Listings:
        """Both lists, fetched together when not cached."""
        chat, images = await asyncio.gather(
            self.models(session, settings, limit), self.image_models(session, settings, limit)
        )
        return Listings(chat, images)

    async def endpoints(
        self,
        session: aiohttp.ClientSession,
        settings: Settings,
        model: str,
        limit: float | None = None,
    ) -> tuple[ImageEndpoint, ...] | None:
        """The providers of one Image API model with their prices, or None."""
        url = settings.image_endpoints_url(quote(model, safe="/"))
        found = await self._get(session, settings, url, parse_endpoints, limit, {}, if_absent=())
        return found if isinstance(found, tuple) else None

    async def _get(
        self,
        session: aiohttp.ClientSession,
        settings: Settings,
        url: str,
        parse: Callable[[bytes], object],
        limit: float | None,
        params: dict[str, str],
        if_absent: object = None,
    ) -> object:
        """What `url` lists (parsed), `if_absent` when it answers 404 (None: a failure), None
        when it cannot be had."""
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            cached = self._cache.get(url)
            if cached is not None:
                age = self._clock.monotonic() - cached[0]
                if age < (self._ttl if cached[1] is not None else FAILURE_TTL):
                    return cached[1]
            timeout = self._timeout if limit is None else max(0.1, min(self._timeout, limit))
            if settings.first_byte_timeout_seconds > 0:
                # A list answers at once: no first byte within that deadline is a dead path.
                timeout = min(timeout, settings.first_byte_timeout_seconds)
            try:
                found: object = await self._fetch(
                    session, url, settings, params, timeout, parse, if_absent is not None
                )
            except _NotThere:
                logger.info(f"{display_url(url)} answered 404: nothing listed there")
                found = if_absent
            except _FetchError as exc:
                logger.info(
                    f"list unavailable from {display_url(url)}: {type(exc).__name__}: {exc}"
                )
                found = None
            self._cache[url] = (self._clock.monotonic(), found)
            return found

    async def _fetch(
        self,
        session: aiohttp.ClientSession,
        url: str,
        settings: Settings,
        params: dict[str, str],
        timeout: float,
        parse: Callable[[bytes], object],
        absent_on_404: bool,
    ) -> object:
        # OpenRouter lists models without a key; compatible gateways often want one.
        headers = {"Authorization": f"Bearer {settings.api_keys[0]}"} if settings.api_keys else {}
        async with session.get(
            url,
            params=params,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            if response.status == 404 and absent_on_404:
                raise _NotThere()
            if response.status != 200:
                raise ValueError(f"HTTP {response.status}")
            body = await response.read()
        if self._cpu is not None:
            return await self._cpu.run(parse, body)
        return await asyncio.to_thread(parse, body)

    async def explain_missing_model(
        self,
        session: aiohttp.ClientSession,
        settings: Settings,
        error: ModelUnavailableError,
    ) -> ModelUnavailableError:
        """The same error with the image models of both lists as suggestions (chat
        completions' first)."""
        listed = await self.listings(session, settings)
        ids = image_model_ids(listed.chat or {}) + image_model_ids(listed.images or {})
        if not ids:
            return error
        suggestions = tuple(dict.fromkeys(i for i in ids if i != error.model))
        if error.model in (listed.chat or {}) or error.model in (listed.images or {}):
            logger.warning(
                f"model {error.model} is listed but answered 404 (no endpoints right now?)"
            )
        return ModelUnavailableError(error.detail, error.model, suggestions)

    async def check_configured_model(
        self, session: aiohttp.ClientSession, settings: Settings
    ) -> None:
        """Log a warning when the configured model is missing or cannot output images."""
        listed = await self.listings(session, settings)
        models = listed.chat
        if not models:
            return
        info = models.get(settings.model)
        images = image_model_ids(models) + image_model_ids(listed.images or {})
        hint = f"image models listed: {', '.join(images[:8])}" if images else ""
        if info is None and settings.model in (listed.images or {}):
            logger.info(f"configured model {settings.model} is served by the Image API")
        elif info is None:
            logger.warning(
                f"configured model {settings.model} is not listed at {display_url(settings.models_url)}: "
                f"unknown or retired. {hint}"
            )
        elif info.output_modalities is not None and not info.makes_images:
            logger.warning(
                f"configured model {settings.model} does not list image output "
                f"(outputs: {', '.join(info.output_modalities)}). {hint}"
            )
