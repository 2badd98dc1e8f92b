"""Which image model takes which sizes and aspect ratios, and what one request sends.

Sources, first that says: the model list (utils/openrouter/model_catalog.py: an entry that
declares its image_config values), then the built-in table below for the known Google image
models, else nothing is known and what the user asked is sent as it is. OpenRouter's chat model
list (checked 2026-11 for the three Google image models) declares prices and modalities but no
sizes or ratios, so for them the built-in table is what counts.

resolve_image_options() is pure: a size or ratio the model cannot draw is mapped to the nearest
one it can (the result lists each change, for the chat model to pass on: texts/replies.options_note) or,
when nothing is near enough, refused with UnsupportedImageOptionError before any request is made.
Nothing the model cannot do is ever sent, so an unsupported option never costs a 400 and a retry.
image_model_summaries() is what /画图模型 lists (worded by texts/models.image_model_list).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from ..core.errors import UnsupportedImageOptionError
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
from .model_catalog import ModelInfo, ModelPrice

LIST, BUILT_IN, UNKNOWN = "list", "built-in", "unknown"
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

    @property
    def known(self) -> bool:
        return self.sizes is not None or self.ratios is not None


@dataclass(frozen=True)
class KnownModel:
    id: str  # as OpenRouter lists it today
    capabilities: ImageCapabilities


KNOWN_MODELS: tuple[KnownModel, ...] = (
    # "Nano Banana": image_size is a Gemini 3 option; 2.5 always draws about 1K.
    KnownModel(
        "google/gemini-2.5-flash-image", ImageCapabilities((), BASE_ASPECT_RATIOS, source=BUILT_IN)
    ),
    # "Nano Banana Pro".
    KnownModel(
        "google/gemini-3-pro-image-preview",
        ImageCapabilities(IMAGE_SIZES, BASE_ASPECT_RATIOS, source=BUILT_IN),
    ),
    # "Nano Banana 2" (2026-02): the extended strips 1:4, 4:1, 1:8, 8:1 too.
    KnownModel(
        "google/gemini-3.1-flash-image-preview",
        ImageCapabilities(IMAGE_SIZES, ASPECT_RATIOS, source=BUILT_IN),
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
    sizes, ratios = built.sizes, built.ratios
    from_list = False
    if listed is not None and listed.image_sizes is not None:
        sizes, from_list = listed.image_sizes, True
    if listed is not None and listed.aspect_ratios is not None:
        ratios, from_list = listed.aspect_ratios, True
    source = LIST if from_list else built.source
    return ImageCapabilities(sizes, ratios, built.fixed_size, source)


def models_taking(
    option: str, value: str, listed: Mapping[str, ModelInfo] | None = None
) -> tuple[str, ...]:
    """Ids of the known (and listed) image models that take `value` for `option`."""
    found: list[str] = []
    candidates = [(m.id, m.capabilities) for m in KNOWN_MODELS]
    if listed:
        candidates += [
            (i, capabilities_for(i, info)) for i, info in listed.items() if info.makes_images
        ]
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

    def image_config(self) -> dict[str, str]:
        """The request's `image_config` (empty: leave the key out)."""
        config: dict[str, str] = {}
        if self.aspect_ratio:
            config["aspect_ratio"] = self.aspect_ratio
        if self.image_size:
            config["image_size"] = self.image_size
        return config


def resolve_image_options(
    model: str,
    image_size: str | None,
    aspect_ratio: str | None,
    listed: Mapping[str, ModelInfo] | None = None,
) -> ResolvedImageOptions:
    """Fit a (canonical) size and ratio to what `model` draws. Pure.

    `listed` is the model list, when there is one. Raises UnsupportedImageOptionError for a
    ratio with nothing near enough among the model's (see MAX_RATIO_CHANGE).
    """
    caps = capabilities_for(model, listed.get(model) if listed else None)
    adjustments: list[Adjustment] = []
    size = _fit_size(caps, image_size or "")
    if size != (image_size or "") and not (size == "" and image_size == caps.fixed_size):
        adjustments.append(Adjustment(IMAGE_SIZE, image_size or "", size))
    ratio = _fit_ratio(model, caps, aspect_ratio or "", listed)
    if ratio != (aspect_ratio or ""):
        adjustments.append(Adjustment(ASPECT_RATIO, aspect_ratio or "", ratio))
    return ResolvedImageOptions(model, size or None, ratio or None, caps, tuple(adjustments))


def resolve_request_options(
    model: str,
    size_argument: object,
    size_default: str,
    ratio_argument: object,
    ratio_default: str,
    listed: Mapping[str, ModelInfo] | None = None,
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


def _fit_ratio(
    model: str, caps: ImageCapabilities, asked: str, listed: Mapping[str, ModelInfo] | None
) -> str:
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


def image_model_summaries(listed: Mapping[str, ModelInfo] | None) -> list[ModelSummary]:
    """The image models of the list (Google's first), or the known ones when there is no list."""
    if not listed:
        # Every known Gemini image model edits too.
        return [
            ModelSummary(m.id, "", m.capabilities, True, None, family_of(m.id))
            for m in KNOWN_MODELS
        ]
    images = [info for info in listed.values() if info.makes_images]
    images.sort(key=lambda i: (not i.id.startswith("google/gemini"), i.id))
    return [
        ModelSummary(
            i.id, i.name, capabilities_for(i.id, i), i.takes_images, i.price, family_of(i.id)
        )
        for i in images
    ]
