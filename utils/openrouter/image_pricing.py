"""What an Image API model costs before it is asked: the `pricing` lines of
`GET <base>/v1/images/models/{id}/endpoints`, and an estimate for one request.

Each endpoint (a provider serving the model) lists lines `{billable, unit, cost_usd[, variant]}`:
`billable` is what is counted (`output_image`, `input_image`, `input_text`, ...), `unit` how
(`image`, `megapixel`, `token`, `request`), `variant` a tier such as a resolution ("2k"). The
estimate is an upper bound, for the money caps: OpenRouter picks the provider, so the dearest
endpoint that can be estimated counts; a tier that does not match the resolution sent, or a
resolution left to the model, counts at the dearest tier; reference pictures count at the
largest size they are sent at. Anything billed per token cannot be known before the answer:
when the pictures themselves are, there is no estimate (None), never a guess of zero.

Pure functions of parsed JSON; the fetching and caching is model_catalog.ModelCatalog's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..core.image_options import SIZE_PIXELS

OUTPUT_IMAGE = "output_image"
INPUT_IMAGE = "input_image"
PER_IMAGE, PER_MEGAPIXEL, PER_TOKEN, PER_REQUEST = "image", "megapixel", "token", "request"
_MEGAPIXEL = 1_000_000


@dataclass(frozen=True)
class PriceLine:
    billable: str
    unit: str
    cost: float  # USD per unit
    variant: str = ""  # lower-cased tier, e.g. "2k"; '' when the line has none


@dataclass(frozen=True)
class ImageEndpoint:
    """One provider's record of an Image API model: its name and price lines."""

    provider: str
    pricing: tuple[PriceLine, ...]


def _cost(value: object) -> float | None:
    try:
        number = float(str(value))
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _lines(pricing: object) -> tuple[PriceLine, ...]:
    lines: list[PriceLine] = []
    for raw in pricing if isinstance(pricing, list) else ():
        if not isinstance(raw, dict):
            continue
        cost = _cost(raw.get("cost_usd"))
        if cost is None:
            continue
        variant = raw.get("variant")
        lines.append(
            PriceLine(
                str(raw.get("billable") or "").lower(),
                str(raw.get("unit") or "").lower(),
                cost,
                variant.strip().lower() if isinstance(variant, str) else "",
            )
        )
    return tuple(lines)


def parse_endpoints(body: bytes) -> tuple[ImageEndpoint, ...]:
    """The endpoints of an endpoints answer (`{"id", "endpoints": [...]}`)."""
    data = json.loads(body)
    entries = data.get("endpoints") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError("no endpoints list in the answer")
    return tuple(
        ImageEndpoint(
            str(e.get("provider_name") or e.get("provider_slug") or ""), _lines(e.get("pricing"))
        )
        for e in entries
        if isinstance(e, dict)
    )


def megapixels(resolution: str) -> float:
    """The most pixels a picture of this size holds (the long side squared, 1:1), in MP."""
    side = SIZE_PIXELS[resolution]
    return side * side / _MEGAPIXEL


def _tier(lines: Sequence[PriceLine], resolution: str | None) -> list[PriceLine]:
    """The lines of one billable for the resolution sent: its tier when the lines have tiers and
    one matches, else every line (the dearest counts)."""
    if resolution is not None:
        matching = [line for line in lines if line.variant == resolution.lower()]
        if matching:
            return matching
    return list(lines)


def _unit_cost(line: PriceLine, megapixels_each: float | None) -> float | None:
    if line.unit in (PER_IMAGE, PER_REQUEST):  # a picture priced per request: per picture
        return line.cost
    if line.unit == PER_MEGAPIXEL and megapixels_each is not None:
        return line.cost * megapixels_each
    return None  # per token, or per megapixel of an unknown size


@dataclass(frozen=True)
class Asked:
    """What one request asks for, as far as its price goes."""

    resolution: str | None = None  # None: left to the model
    n: int = 1
    references: int = 0
    reference_megapixels: float = 0.0  # the most one reference picture holds
    largest_resolution: str | None = None  # what a resolution left to the model counts as


def endpoint_estimate(endpoint: ImageEndpoint, asked: Asked) -> float | None:
    """USD for one request to this endpoint, or None when its pictures are not priced per
    picture or per megapixel."""
    outputs = [line for line in endpoint.pricing if line.billable == OUTPUT_IMAGE]
    if not outputs:
        return None
    size = asked.resolution or asked.largest_resolution
    each = megapixels(size) if size in SIZE_PIXELS else None
    costs = [_unit_cost(line, each) for line in _tier(outputs, asked.resolution)]
    known = [c for c in costs if c is not None]
    if not known or (len(known) < len(costs) and not asked.resolution):
        return None  # a tier we cannot price might be the one drawn
    total = max(known) * max(1, asked.n)
    for line in endpoint.pricing:
        if line.billable == INPUT_IMAGE:
            total += _references_cost(line, asked)
        elif line.billable != OUTPUT_IMAGE and line.unit == PER_REQUEST:
            total += line.cost
    return total


def _references_cost(line: PriceLine, asked: Asked) -> float:
    """What an `input_image` line adds: nothing without reference pictures; once for a
    request that sends any when priced per request; else per picture (per-token input is
    small and not counted)."""
    if not asked.references:
        return 0.0
    if line.unit == PER_REQUEST:
        return line.cost
    per = _unit_cost(line, asked.reference_megapixels or None)
    return (per or 0.0) * asked.references


def estimate(endpoints: Iterable[ImageEndpoint], asked: Asked) -> float | None:
    """The dearest endpoint's estimate (OpenRouter picks the provider), or None."""
    found = [endpoint_estimate(e, asked) for e in endpoints]
    known = [cost for cost in found if cost is not None]
    return max(known) if known else None


def billed_per_token(endpoints: Iterable[ImageEndpoint]) -> bool:
    """Whether the pictures are priced per token (known only after the answer)."""
    return any(
        line.billable == OUTPUT_IMAGE and line.unit == PER_TOKEN
        for e in endpoints
        for line in e.pricing
    )


def request_estimate(
    endpoints: Iterable[ImageEndpoint],
    resolution: str | None,
    sizes: Sequence[str] | None,
    n: int = 1,
    references: int = 0,
    reference_max_side: int = 0,
) -> float | None:
    """estimate() for one request: a size left to the model counts as the largest it draws
    (`sizes`), a reference picture as one of `reference_max_side` pixels square."""
    known = [s for s in sizes or () if s in SIZE_PIXELS]
    largest = max(known, key=SIZE_PIXELS.__getitem__) if known else None
    reference_mp = reference_max_side * reference_max_side / _MEGAPIXEL
    return estimate(endpoints, Asked(resolution, n, references, reference_mp, largest))


def price_tiers(
    endpoints: Iterable[ImageEndpoint], sizes: Sequence[str] | None
) -> tuple[tuple[str, float], ...]:
    """One picture's estimate at each size the model draws ('' when it is the same at every
    size, or the model takes no size); () when none can be estimated."""
    endpoints = tuple(endpoints)
    known = [s for s in sizes or () if s in SIZE_PIXELS]
    tiers = [(size, request_estimate(endpoints, size, known)) for size in known]
    priced = [(size, cost) for size, cost in tiers if cost is not None]
    if priced and len({cost for _, cost in priced}) == 1 and len(priced) == len(tiers):
        return (("", priced[0][1]),)
    if priced:
        return tuple(priced)
    single = request_estimate(endpoints, None, known)
    return (("", single),) if single is not None else ()
