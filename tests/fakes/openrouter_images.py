"""The Image API side of the fake OpenRouter: its discovery answers and its generation answers.

Shapes as OpenRouter documents them (2026-06; its SDKs' ImageModelsListResponse,
ImageModelEndpointsResponse and image generation types):
- GET /api/v1/images/models -> {"data": [{id, name, description, created, architecture:
  {input_modalities, output_modalities}, supported_parameters: {name: {type: "enum", values} |
  {type: "range", min, max} | {type: "boolean"}}, supports_streaming, endpoints}]};
- GET /api/v1/images/models/{id}/endpoints -> {"id", "endpoints": [{provider_name,
  provider_slug, provider_tag, supported_parameters, allowed_passthrough_parameters,
  supports_streaming, pricing: [{billable, unit, cost_usd[, variant]}]}]};
- POST /api/v1/images {model, prompt, n, resolution, aspect_ratio, input_references} ->
  {"created", "data": [{"b64_json", "media_type"}], "usage": {"cost"}}.

Prices and most parameter values are made up (of OpenRouter's order of magnitude); what matters
is that each pricing kind is there: per picture with resolution tiers (Seedream), per megapixel
from two providers (FLUX.2 Pro), per token (GPT Image).

The generation answer checks the request against the model's descriptor, as the service would
refuse it (400): a test that fits a value wrongly sees it fail.
"""

from __future__ import annotations

import base64
import copy
import time
from typing import Any

SEEDREAM = "bytedance-seed/seedream-4.5"
GPT_IMAGE = "openai/gpt-image-2"
FLUX_PRO = "black-forest-labs/flux.2-pro"  # on chat completions too (an image-only model there)
# What the Image API lists; the first two only it serves.
IMAGES_API_MODELS = (SEEDREAM, GPT_IMAGE, FLUX_PRO)
SEEDREAM_RATIOS = ["1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3", "21:9"]
# usage.cost of a Seedream picture per resolution (its price lines say the same).
SEEDREAM_PRICES = {"2K": 0.04, "4K": 0.06}
FLUX_PER_MEGAPIXEL = (0.015, 0.03)  # two providers


def _enum(*values: str) -> dict[str, Any]:
    return {"type": "enum", "values": list(values)}


def _range(low: int, high: int) -> dict[str, Any]:
    return {"type": "range", "min": low, "max": high}


_PARAMETERS: dict[str, dict[str, Any]] = {
    SEEDREAM: {
        "resolution": _enum("2K", "4K"),
        "aspect_ratio": _enum(*SEEDREAM_RATIOS),
        "n": _range(1, 4),
        "input_references": _range(0, 14),
        "seed": {"type": "boolean"},
    },
    GPT_IMAGE: {
        "aspect_ratio": _enum("1:1", "3:2", "2:3", "auto"),
        "quality": _enum("auto", "low", "medium", "high"),
        "n": _range(1, 10),
        "input_references": _range(0, 16),
    },
    FLUX_PRO: {
        "resolution": _enum("1K", "2K"),
        "aspect_ratio": _enum("1:1", "4:3", "3:4", "16:9", "9:16", "21:9"),
        "n": _range(1, 1),
        "input_references": _range(0, 8),
    },
}
_NAMES = {
    SEEDREAM: "ByteDance Seed: Seedream 4.5",
    GPT_IMAGE: "OpenAI: GPT Image 2",
    FLUX_PRO: "Black Forest Labs: FLUX.2 Pro",
}
_PRICING: dict[str, list[list[dict[str, Any]]]] = {  # per endpoint
    SEEDREAM: [
        [
            {"billable": "output_image", "unit": "image", "cost_usd": cost, "variant": size.lower()}
            for size, cost in SEEDREAM_PRICES.items()
        ]
    ],
    GPT_IMAGE: [
        [
            {"billable": "input_image", "unit": "token", "cost_usd": 0.000008},
            {"billable": "input_text", "unit": "token", "cost_usd": 0.000005},
            {"billable": "output_image", "unit": "token", "cost_usd": 0.00003},
        ]
    ],
    FLUX_PRO: [
        [{"billable": "output_image", "unit": "megapixel", "cost_usd": cost}]
        for cost in FLUX_PER_MEGAPIXEL
    ],
}


def discovery_entry(model: str) -> dict[str, Any]:
    """A fresh entry: a test may change it (through FakeOpenRouter.image_models)."""
    return {
        "id": model,
        "name": _NAMES[model],
        "description": "An image model.",
        "created": 1782000000,
        "architecture": {"input_modalities": ["text", "image"], "output_modalities": ["image"]},
        "supported_parameters": copy.deepcopy(_PARAMETERS[model]),
        "supports_streaming": model == GPT_IMAGE,
        "endpoints": f"/api/v1/images/models/{model}/endpoints",
    }


def default_discovery() -> list[dict[str, Any]]:
    return [discovery_entry(m) for m in IMAGES_API_MODELS]


def endpoints_answer(model: str) -> dict[str, Any]:
    provider = model.split("/")[0]
    return {
        "id": model,
        "endpoints": [
            {
                "provider_name": f"{provider} {i}",
                "provider_slug": f"{provider}-{i}",
                "provider_tag": f"{provider}-{i}",
                "supported_parameters": copy.deepcopy(_PARAMETERS[model]),
                "allowed_passthrough_parameters": [],
                "supports_streaming": model == GPT_IMAGE,
                "pricing": pricing,
            }
            for i, pricing in enumerate(_PRICING[model], 1)
        ],
    }


def images_answer(pictures: list[bytes], cost: float | None, media_type: str = "image/png"):
    """A generation answer; `cost` None leaves usage.cost out."""
    return {
        "created": int(time.time()),
        "data": [
            {"b64_json": base64.b64encode(p).decode(), "media_type": media_type} for p in pictures
        ],
        "usage": {} if cost is None else {"cost": cost},
    }


def cost_of(model: str, body: dict[str, Any]) -> float:
    """What the fake bills a generation (USD): Seedream by its tier, the others a flat price."""
    n = body.get("n", 1)
    if model == SEEDREAM:
        return SEEDREAM_PRICES.get(body.get("resolution", "4K"), 0.06) * n
    return 0.05 * n


def refusal(entry: dict[str, Any] | None, body: dict[str, Any]) -> tuple[int, str] | None:
    """(status, message) when the service would refuse this request; None when it is fine."""
    if not isinstance(body.get("prompt"), str) or not body["prompt"]:
        return 400, "prompt is required"
    if entry is None:
        return 404, f"Model {body.get('model')} not found"
    parameters = entry["supported_parameters"]
    for name in ("resolution", "aspect_ratio"):
        if name in body and body[name] not in parameters.get(name, {}).get("values", []):
            return 400, f"{name} {body[name]!r} is not supported by {entry['id']}"
    references = body.get("input_references", [])
    limit = parameters.get("input_references", {}).get("max", 0)
    if len(references) > limit:
        return 400, f"at most {limit} input_references"
    for reference in references:
        url = reference.get("image_url", {}).get("url", "") if isinstance(reference, dict) else ""
        if reference.get("type") != "image_url" or not url.startswith("data:image/"):
            return 400, "input_references must be image_url parts"
    n = body.get("n", 1)
    n_range = parameters.get("n", {"min": 1, "max": 1})
    if not isinstance(n, int) or not n_range["min"] <= n <= n_range["max"]:
        return 400, f"n must be within {n_range['min']}..{n_range['max']}"
    return None
