"""Where each image model is asked, and how: which API, which output modalities, whether it
reads reference pictures, which sizes and aspect ratios it takes; and what one request sends.

Where (route_for): OpenRouter serves image models through two APIs. Chat completions' list
(GET /models) holds the older ones; the Image API (POST /images, its discovery GET
/images/models) every one added since 2026-06 (Seedream 4.5, FLUX.2, GPT Image...). A model chat
completions lists as an image model stays there (with streaming, keep-alives and all built on
them); one only the Image API lists goes there; when neither list can be had, the built-in table
below says, else chat completions (what every version before did). On the chat path an image-only
model (`output_modalities: ["image"]`) is asked for `["image"]` alone: asked for text too,
OpenRouter finds no endpoint for it.

What it takes, first that says: the list the route rests on (utils/openrouter/model_catalog.py:
an entry that declares its parameter values; the Image API's always do), then the Image API's
entry of a model chat completions serves too, then the built-in table for the models it knows,
else nothing is known and what the user asked is sent as it is.
OpenRouter's chat model list (checked 2026-11 for the three Google image models) declares prices
and modalities but no sizes or ratios, so for them the built-in table is what counts.

resolve_image_options() is pure: a size or ratio the model cannot draw is mapped to the nearest
one it can (the result lists each change, for the chat model to pass on: texts/replies.options_note) or,
when nothing is near enough, refused with UnsupportedImageOptionError before any request is made.
Nothing the model cannot do is ever sent, so an unsupported option never costs a 400 and a retry.
image_model_summaries() is what /画图模型 lists (worded by texts/models.image_model_list).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from ..core.errors import ReferencesNotAcceptedError, UnsupportedImageOptionError
from ..core.image_options import (
    ASPECT_RATIO,
    ASPECT_RATIOS,
    BASE_ASPECT_RATIOS,
    IMAGE_SIZE,
    IMAGE_SIZES,
    SIZE_PIXELS,
    normalize_aspect_ratio,
    normalize_image_size,
    ratio_distance,
    resolve_aspect_ratio,
    resolve_image_size,
)
from .model_catalog import Listings, ModelInfo, ModelPrice

LIST, BUILT_IN, UNKNOWN = "list", "built-in", "unknown"
# The two ways to ask for a picture (ttp.py has a transport for each).
CHAT_API, IMAGES_API = "chat", "images"
TEXT_AND_IMAGE: tuple[str, ...] = ("image", "text")
IMAGE_ONLY: tuple[str, ...] = ("image",)
# A ratio is mapped to the nearest one the model draws only while that is at most this many
# times wider or taller: 1:4 becomes 9:16 (2.25x) and 4:1 becomes 21:9 (1.71x), but 1:8 or 8:1
# would become a different picture (4.5x, 3.4x) and are refused with a pointer to a model that
# draws them.
MAX_RATIO_CHANGE = 2.5


@dataclass(frozen=True)
class ImageCapabilities:
    """What a model takes. None: not known (what is asked is sent); (): takes none of them."""

    sizes: tuple[str, ...] | None
    ratios: tuple[str, ...] | None
    # What a model that takes no image_size draws (Gemini 2.5 Flash Image: about 1024 px).
    fixed_size: str = "1K"
    source: str = UNKNOWN
    # The most reference pictures one request may carry (None: not known; the config's limit).
    max_references: int | None = None

    @property
    def known(self) -> bool:
        return self.sizes is not None or self.ratios is not None


@dataclass(frozen=True)
class KnownModel:
    id: str  # as OpenRouter lists it today
    capabilities: ImageCapabilities
    api: str = CHAT_API
    outputs: tuple[str, ...] = TEXT_AND_IMAGE
    takes_images: bool = True
    # Keeps the most context of an edit when the previous turn comes back as history with the
    # `reasoning_details` (thought signatures) it returned (Google's multi-turn image editing).
    multi_turn: bool = False


KNOWN_MODELS: tuple[KnownModel, ...] = (
    # "Nano Banana": image_size is a Gemini 3 option; 2.5 always draws about 1K.
    KnownModel(
        "google/gemini-2.5-flash-image", ImageCapabilities((), BASE_ASPECT_RATIOS, source=BUILT_IN)
    ),
    # "Nano Banana Pro".
    KnownModel(
        "google/gemini-3-pro-image-preview",
        ImageCapabilities(IMAGE_SIZES, BASE_ASPECT_RATIOS, source=BUILT_IN),
        multi_turn=True,
    ),
    # "Nano Banana 2" (2026-02): the extended strips 1:4, 4:1, 1:8, 8:1 too.
    KnownModel(
        "google/gemini-3.1-flash-image-preview",
        ImageCapabilities(IMAGE_SIZES, ASPECT_RATIOS, source=BUILT_IN),
        multi_turn=True,
    ),
    # On the Image API only (OpenRouter, 2026-06), for relays that have no discovery: 2K and 4K,
    # up to 14 reference pictures, the ten common ratios (as relays list it, 2026-11).
    KnownModel(
        "bytedance-seed/seedream-4.5",
        ImageCapabilities(("2K", "4K"), BASE_ASPECT_RATIOS, source=BUILT_IN, max_references=14),
        api=IMAGES_API,
        outputs=IMAGE_ONLY,
    ),
)
# A variant (`:free`), the `-preview` tag or a dated suffix does not change what a model draws.
_VARIANT = re.compile(r"(?::[\w.-]*)$")
_PREVIEW = re.compile(r"-preview(?:-[0-9][0-9-]*)?$")


def family_of(model: str) -> str:
    """The id without variant and preview/date suffixes: google/gemini-3-pro-image."""
    base = _VARIANT.sub("", model.strip().lower())
    return _PREVIEW.sub("", base)


_BY_FAMILY: dict[str, KnownModel] = {family_of(m.id): m for m in KNOWN_MODELS}


def capabilities_for(model: str, listed: ModelInfo | None = None) -> ImageCapabilities:
    """What `model` takes: the list's declared values first, then the built-in table."""
    known = _BY_FAMILY.get(family_of(model))
    built = known.capabilities if known else ImageCapabilities(None, None)
    sizes, ratios, references = built.sizes, built.ratios, built.max_references
    from_list = False
    if listed is not None and listed.image_sizes is not None:
        sizes, from_list = listed.image_sizes, True
    if listed is not None and listed.aspect_ratios is not None:
        ratios, from_list = listed.aspect_ratios, True
    if listed is not None and listed.max_references is not None:
        references = listed.max_references
    source = LIST if from_list else built.source
    return ImageCapabilities(sizes, ratios, built.fixed_size, source, references)


@dataclass(frozen=True)
class ModelRoute:
    """Where and how one model is asked."""

    model: str
    api: str  # CHAT_API or IMAGES_API
    # Chat completions' `modalities`: IMAGE_ONLY for a model that outputs no text.
    modalities: tuple[str, ...] = TEXT_AND_IMAGE
    takes_images: bool | None = None  # reads reference pictures; None: not known
    n: int = 1  # pictures asked of the Image API (its `n` range may start above 1)
    source: str = UNKNOWN  # what the route rests on: LIST, BUILT_IN or UNKNOWN
    info: ModelInfo | None = None  # the list entry it rests on
    # The entry whose declared values say what it takes: `info`, or for a model on both APIs
    # whose chat entry declares none, its Image API entry.
    descriptor: ModelInfo | None = None


def _declares(info: ModelInfo | None) -> bool:
    return info is not None and any(
        v is not None for v in (info.image_sizes, info.aspect_ratios, info.max_references)
    )


def _served(listed: Mapping[str, ModelInfo] | None, model: str) -> ModelInfo | None:
    return listed.get(model) if listed else None


def route_for(model: str, listed: Listings | None = None) -> ModelRoute:
    """Which API `model` is asked through, for what, and from which source. Pure."""
    chat = _served(listed.chat if listed else None, model)
    images = _served(listed.images if listed else None, model)
    known = _BY_FAMILY.get(family_of(model))
    if chat is not None and (chat.output_modalities is None or chat.makes_images):
        api, info = CHAT_API, chat
    elif images is not None:
        api, info = IMAGES_API, images
    elif chat is not None:  # listed, but not as an image model: asked as before
        api, info = CHAT_API, chat
    elif known is not None:
        api, info = known.api, None
    else:
        return ModelRoute(model, CHAT_API)
    outputs = info.output_modalities if info is not None else None
    if outputs is None:
        outputs = known.outputs if known is not None else TEXT_AND_IMAGE
    takes = info.takes_images if info is not None else None
    if takes is None and known is not None:
        takes = known.takes_images
    first_n = info.n_range[0] if info is not None and info.n_range else 1
    return ModelRoute(
        model,
        api,
        TEXT_AND_IMAGE if "text" in outputs else IMAGE_ONLY,
        takes,
        max(1, first_n),
        LIST if info is not None else BUILT_IN,
        info,
        info if _declares(info) or not _declares(images) else images,
    )


def keeps_turns(route: ModelRoute) -> bool:
    """Whether a continued edit sends the previous turn back as conversation history (a model
    of the table that keeps turns, asked through chat completions, where messages carry
    history); otherwise the last picture goes as a plain reference."""
    known = _BY_FAMILY.get(family_of(route.model))
    return route.api == CHAT_API and known is not None and known.multi_turn


def _image_models(listed: Listings | None) -> dict[str, ModelInfo]:
    """Every listed image model, each under the API it is asked through (chat's first)."""
    found: dict[str, ModelInfo] = {}
    for models in (listed.chat, listed.images) if listed else ():
        for model_id, info in (models or {}).items():
            if info.makes_images and model_id not in found:
                found[model_id] = info
    return found


def models_taking(option: str, value: str, listed: Listings | None = None) -> tuple[str, ...]:
    """Ids of the known (and listed) image models that take `value` for `option`."""
    found: list[str] = []
    candidates = [(m.id, m.capabilities) for m in KNOWN_MODELS]
    candidates += [(i, capabilities_for(i, info)) for i, info in _image_models(listed).items()]
    for model, caps in candidates:
        values = caps.sizes if option == IMAGE_SIZE else caps.ratios
        if values and value in values and model not in found:
            found.append(model)
    return tuple(found)


# --- one request ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Adjustment:
    """One option changed to fit the model. `sent` '' = nothing sent (the model's own size)."""

    option: str
    asked: str
    sent: str


@dataclass(frozen=True)
class ResolvedImageOptions:
    """What is sent for one request, and what had to change to get there."""

    model: str
    image_size: str | None
    aspect_ratio: str | None
    capabilities: ImageCapabilities
    adjustments: tuple[Adjustment, ...] = ()
    # Changes to configured defaults: for the log, not for the user (who did not ask).
    silent: tuple[Adjustment, ...] = ()
    route: ModelRoute = field(kw_only=True)  # where and how the model is asked

    def image_config(self) -> dict[str, str]:
        """The request's `image_config` (empty: leave the key out)."""
        return image_config(self.aspect_ratio, self.image_size)


def image_config(aspect_ratio: str | None, image_size: str | None) -> dict[str, str]:
    """Chat completions' `image_config` for a (fitted) ratio and size; empty: leave it out."""
    config: dict[str, str] = {}
    if aspect_ratio:
        config["aspect_ratio"] = aspect_ratio
    if image_size:
        config["image_size"] = image_size
    return config


def resolve_image_options(
    model: str,
    image_size: str | None,
    aspect_ratio: str | None,
    listed: Listings | None = None,
) -> ResolvedImageOptions:
    """Fit a (canonical) size and ratio to what `model` draws, on the API it is asked through.
    Pure.

    `listed` is what the service lists, when known. Raises UnsupportedImageOptionError for a
    ratio with nothing near enough among the model's (see MAX_RATIO_CHANGE).
    """
    route = route_for(model, listed)
    caps = capabilities_for(model, route.descriptor)
    adjustments: list[Adjustment] = []
    size = _fit_size(caps, image_size or "")
    if size != (image_size or "") and not (size == "" and image_size == caps.fixed_size):
        adjustments.append(Adjustment(IMAGE_SIZE, image_size or "", size))
    ratio = _fit_ratio(model, caps, aspect_ratio or "", listed)
    if ratio != (aspect_ratio or ""):
        adjustments.append(Adjustment(ASPECT_RATIO, aspect_ratio or "", ratio))
    return ResolvedImageOptions(
        model, size or None, ratio or None, caps, tuple(adjustments), route=route
    )


def resolve_request_options(
    model: str,
    size_argument: object,
    size_default: str,
    ratio_argument: object,
    ratio_default: str,
    listed: Listings | None = None,
) -> ResolvedImageOptions:
    """resolve_image_options for one request: tool arguments over configured defaults. Pure.

    An argument that is no valid value raises InvalidArgumentError; one the model cannot draw is
    mapped (listed in `adjustments`) or refused. A configured default is never refused: it is
    mapped, or dropped when nothing is near, quietly (in `silent`): the user did not ask for it
    and could not change it.
    """
    size = resolve_image_size(size_argument, size_default)
    ratio = resolve_aspect_ratio(ratio_argument, ratio_default)
    # Invalid values raised above; here "auto" and the like count as not asked.
    explicit = {
        IMAGE_SIZE: bool(normalize_image_size(size_argument)),
        ASPECT_RATIO: bool(normalize_aspect_ratio(ratio_argument)),
    }
    try:
        options = resolve_image_options(model, size, ratio, listed)
    except UnsupportedImageOptionError:
        if explicit[ASPECT_RATIO]:
            raise
        options = resolve_image_options(model, size, None, listed)
        dropped = Adjustment(ASPECT_RATIO, ratio or "", "")
        options = replace(options, adjustments=(*options.adjustments, dropped))
    return replace(
        options,
        adjustments=tuple(a for a in options.adjustments if explicit[a.option]),
        silent=tuple(a for a in options.adjustments if not explicit[a.option]),
    )


def _fit_size(caps: ImageCapabilities, asked: str) -> str:
    if not asked or caps.sizes is None or asked in caps.sizes:
        return asked
    if not caps.sizes:
        return ""  # the model takes no size: it draws its own
    # Nearest by pixels; between two equally near, the bigger (the user asked for detail).
    return min(
        caps.sizes, key=lambda s: (abs(SIZE_PIXELS[s] - SIZE_PIXELS[asked]), -SIZE_PIXELS[s])
    )


def _fit_ratio(model: str, caps: ImageCapabilities, asked: str, listed: Listings | None) -> str:
    if not asked or caps.ratios is None or asked in caps.ratios:
        return asked
    nearest = min(caps.ratios, key=lambda r: ratio_distance(r, asked)) if caps.ratios else ""
    if nearest and ratio_distance(nearest, asked) <= MAX_RATIO_CHANGE:
        return nearest
    raise UnsupportedImageOptionError(
        f"{model} draws no ratio near {asked} (nearest {nearest or 'none'})",
        model,
        ASPECT_RATIO,
        asked,
        caps.ratios,
        tuple(m for m in models_taking(ASPECT_RATIO, asked, listed) if m != model),
    )


# --- the model list for /画图模型 -----------------------------------------------------------------


@dataclass(frozen=True)
class ModelSummary:
    id: str
    name: str
    capabilities: ImageCapabilities
    edits: bool | None  # reads input images; None: not known
    price: ModelPrice | None
    family: str = ""
    api: str = CHAT_API
    # Image API models: (size, estimated USD per picture) from the providers' prices ('' size:
    # the one price there is); () when not known; per_token when only the answer can tell.
    image_prices: tuple[tuple[str, float], ...] = ()
    per_token: bool = False


def image_model_summaries(listed: Listings | None) -> list[ModelSummary]:
    """The image models of both lists (chat completions' first, Google's first in each), or
    the known ones when there is no list."""
    if not listed or (not listed.chat and not listed.images):
        return [
            ModelSummary(m.id, "", m.capabilities, m.takes_images, None, family_of(m.id), m.api)
            for m in KNOWN_MODELS
        ]
    summaries: list[ModelSummary] = []
    for info in sorted(
        _image_models(listed).values(),
        key=lambda i: (i.id not in (listed.chat or {}), not i.id.startswith("google/gemini"), i.id),
    ):
        route = route_for(info.id, listed)
        summaries.append(
            ModelSummary(
                info.id,
                info.name,
                capabilities_for(info.id, route.descriptor),
                route.takes_images,
                info.price,
                family_of(info.id),
                route.api,
            )
        )
    return summaries


def check_references(
    route: ModelRoute, references: int, needs_image: bool, listed: Listings | None
) -> None:
    """Refuse, before anything is downloaded or sent, reference pictures (or a command that
    works on one) for a model that reads none; name image models that do."""
    if route.takes_images is not False or not (references or needs_image):
        return
    takers = (s.id for s in image_model_summaries(listed) if s.edits and s.id != route.model)
    raise ReferencesNotAcceptedError(
        f"{route.model} reads no images ({references} reference picture(s) came)",
        route.model,
        tuple(takers)[:2],
    )
