"""Which model takes which size and ratio: what each request sends, what is mapped, what is refused.

The wire tests run the real OpenRouterClient against the fake OpenRouter over loopback and read
the `image_config` the fake received.
"""

from __future__ import annotations

import itertools

import aiohttp
import pytest

from tests.fakes.openrouter import IMAGE_MODELS, IMAGE_ONLY_MODELS, TEXT_MODELS
from utils.chat.texts import models, replies
from utils.chat.texts.failures import user_message
from utils.chat.texts.language import ZH
from utils.core.clock import Deadline
from utils.core.errors import UnsupportedImageOptionError
from utils.core.image_options import ASPECT_RATIOS, BASE_ASPECT_RATIOS, IMAGE_SIZES
from utils.core.settings import Settings
from utils.openrouter.capabilities import (
    BUILT_IN,
    LIST,
    UNKNOWN,
    capabilities_for,
    family_of,
    image_model_summaries,
    resolve_image_options,
    resolve_request_options,
)
from utils.openrouter.model_catalog import Listings, ModelCatalog, ModelInfo
from utils.ttp import GenerationRequest

FLASH, PRO, FLASH31 = IMAGE_MODELS
UNKNOWN_MODEL = "acme/painter-9"
SIZES = ["", *IMAGE_SIZES]
RATIOS = ["", *ASPECT_RATIOS]


def _expected(model: str, size: str, ratio: str) -> dict[str, str] | None:
    """What must be sent, from the documented capabilities (independently of the table)."""
    config = {}
    if model == FLASH:
        size = ""  # 2.5 Flash Image takes no image_size at all
    if ratio in ("1:4", "4:1") and model in (FLASH, PRO):
        ratio = {"1:4": "9:16", "4:1": "21:9"}[ratio]
    if ratio in ("1:8", "8:1") and model in (FLASH, PRO):
        return None  # refused
    if ratio:
        config["aspect_ratio"] = ratio
    if size:
        config["image_size"] = size
    return config


@pytest.mark.parametrize(
    ("model", "size", "ratio"),
    [
        *itertools.product([FLASH, PRO, FLASH31, UNKNOWN_MODEL], SIZES, ["", "16:9"]),
        *itertools.product([FLASH, PRO, FLASH31, UNKNOWN_MODEL], ["4K"], ASPECT_RATIOS),
    ],
)
def test_what_each_model_is_sent(model, size, ratio):
    expected = _expected(model, size, ratio) if model != UNKNOWN_MODEL else None
    if model == UNKNOWN_MODEL:  # nothing known: exactly what was asked
        expected = {k: v for k, v in (("aspect_ratio", ratio), ("image_size", size)) if v}
    if expected is None:
        with pytest.raises(UnsupportedImageOptionError):
            resolve_image_options(model, size, ratio)
        return
    resolved = resolve_image_options(model, size or None, ratio or None)
    assert resolved.image_config() == expected
    changed = bool(resolved.adjustments)
    assert changed == (
        (model == FLASH and size in ("2K", "4K")) or expected.get("aspect_ratio", "") != ratio
    )
    assert bool(replies.options_note(ZH, resolved)) == changed


def test_a_mapping_is_explained_to_the_chat_model():
    resolved = resolve_image_options(PRO, "4K", "1:4")
    assert resolved.image_config() == {"aspect_ratio": "9:16", "image_size": "4K"}
    assert [(a.option, a.asked, a.sent) for a in resolved.adjustments] == [
        ("aspect_ratio", "1:4", "9:16")
    ]
    note = replies.options_note(ZH, resolved)
    assert "不支持宽高比 1:4，已改用最接近的 9:16" in note and PRO in note

    fixed = resolve_image_options(FLASH, "4K", None)
    assert fixed.image_config() == {}
    note = replies.options_note(ZH, fixed)
    assert "固定约 1K" in note and "4K" in note


def test_a_size_the_model_draws_anyway_needs_no_note():
    assert resolve_image_options(FLASH, "1K", None).adjustments == ()


def test_a_refusal_names_what_the_model_takes_and_who_draws_it():
    with pytest.raises(UnsupportedImageOptionError) as caught:
        resolve_image_options(PRO, "2K", "8:1")
    error = caught.value
    assert (error.model, error.option, error.value) == (PRO, "aspect_ratio", "8:1")
    assert error.supported == BASE_ASPECT_RATIOS
    assert error.models == (FLASH31,)
    text = user_message(ZH, error)
    assert text.count("。") == 1  # one sentence
    assert f"{PRO} 不支持宽高比 8:1" in text and FLASH31 in text and "21:9" in text


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("google/gemini-3-pro-image-preview", "google/gemini-3-pro-image"),
        ("google/gemini-3-pro-image", "google/gemini-3-pro-image"),
        ("Google/Gemini-3.1-Flash-Image-Preview:free", "google/gemini-3.1-flash-image"),
        ("google/gemini-2.5-flash-image-preview-09-2025", "google/gemini-2.5-flash-image"),
        ("acme/painter-9", "acme/painter-9"),
    ],
)
def test_variants_share_their_family(model, family):
    assert family_of(model) == family


def test_the_non_preview_ids_get_the_same_table():
    assert capabilities_for("google/gemini-3.1-flash-image").ratios == ASPECT_RATIOS
    assert capabilities_for("google/gemini-3-pro-image:nitro").sizes == IMAGE_SIZES


def test_what_the_list_declares_wins_over_the_table():
    chat = {
        PRO: ModelInfo(PRO, ("image", "text"), image_sizes=("1K", "2K")),
        UNKNOWN_MODEL: ModelInfo(UNKNOWN_MODEL, ("image",), aspect_ratios=("1:1", "8:1")),
    }
    listed = Listings(chat=chat)
    assert capabilities_for(PRO, chat[PRO]).source == LIST
    assert capabilities_for(PRO).source == BUILT_IN
    assert capabilities_for(UNKNOWN_MODEL).source == UNKNOWN
    # The list says Pro stops at 2K: a 4K request is mapped, the table's ratios still apply.
    assert resolve_image_options(PRO, "4K", "1:4", listed).image_config() == {
        "aspect_ratio": "9:16",
        "image_size": "2K",
    }
    # An unknown model that declares its ratios: those are checked, its sizes pass as asked.
    assert resolve_image_options(UNKNOWN_MODEL, "4K", "8:1", listed).image_config() == {
        "aspect_ratio": "8:1",
        "image_size": "4K",
    }
    assert resolve_image_options(UNKNOWN_MODEL, None, "2:3", listed).aspect_ratio == "1:1"
    # ...and a refusal points at every model that draws the ratio, listed ones too.
    with pytest.raises(UnsupportedImageOptionError) as caught:
        resolve_image_options(FLASH, None, "8:1", listed)
    assert caught.value.models == (FLASH31, UNKNOWN_MODEL)


# --- on the wire --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "size", "ratio"),
    [
        (FLASH, "4K", "4:1"),
        (FLASH, "", "1:1"),
        (PRO, "2K", "1:4"),
        (PRO, "4K", ""),
        (FLASH31, "4K", "1:8"),
        (FLASH31, "1K", "8:1"),
        (UNKNOWN_MODEL, "2K", "1:8"),
        (FLASH31, "", ""),
    ],
)
async def test_the_request_carries_the_resolved_image_config(client_for, fake, model, size, ratio):
    if model == UNKNOWN_MODEL:  # listed by OpenRouter, unknown to the capability table
        fake.models.append({**fake.models[0], "id": UNKNOWN_MODEL})
    resolved = resolve_image_options(model, size or None, ratio or None)
    request = GenerationRequest(
        "a cat", aspect_ratio=resolved.aspect_ratio, image_size=resolved.image_size
    )
    result = await client_for(model).generate(request, Deadline.start(30))

    [sent] = fake.chat_requests()
    assert sent.body["model"] == model
    assert sent.body.get("image_config", {}) == (_expected(model, size, ratio) or {})
    if not resolved.image_config():
        assert "image_config" not in sent.body
    assert len(result.images) == 1


# --- /画图模型 ------------------------------------------------------------------------------------


def format_image_models(listed, current: str, limit: int = 20) -> str:
    return models.image_model_list(ZH, image_model_summaries(listed), current, bool(listed), limit)


async def _listed(fake) -> Listings:
    settings = Settings.from_config({"custom_api_base": fake.base_url})
    async with aiohttp.ClientSession() as session:
        listed = await ModelCatalog().listings(session, settings)
    assert listed.chat is not None
    return listed


async def test_the_listing_shows_every_image_model_with_what_it_can_do_and_costs(fake):
    text = format_image_models(await _listed(fake), current=PRO)
    lines = text.splitlines()

    assert lines[0] == f"当前图像模型：{PRO}"
    for model in (*IMAGE_MODELS, *IMAGE_ONLY_MODELS):
        assert model in text
    assert not any(model in text for model in TEXT_MODELS)
    assert f"👉 {PRO}（Google: Nano Banana Pro (Gemini 3 Pro Image Preview)）" in lines
    [pro] = [lines[i + 1] for i, line in enumerate(lines) if line.startswith(f"👉 {PRO}")]
    assert "尺寸 1K/2K/4K" in pro and "10 种宽高比" in pro and "可改图" in pro
    assert "输入 2 美元/百万 token" in pro and "输出 12 美元/百万 token" in pro
    [flash31] = [lines[i + 1] for i, line in enumerate(lines) if line.startswith(f"· {FLASH31}")]
    assert (
        "14 种宽高比（含 1:4、4:1、1:8、8:1）" in flash31
        and "图片输出 60 美元/百万 token" in flash31
    )
    [flash] = [lines[i + 1] for i, line in enumerate(lines) if line.startswith(f"· {FLASH}")]
    assert "尺寸固定约 1K" in flash and "输出 2.5 美元/百万 token" in flash
    [flux] = [lines[i + 1] for i, line in enumerate(lines) if IMAGE_ONLY_MODELS[0] in line]
    # Its sizes come from its Image API entry (it is on both APIs), its price from the chat list.
    assert "尺寸 1K/2K" in flux and "每次请求 0.03 美元" in flux


async def test_the_list_is_asked_for_every_output_modality(fake):
    await _listed(fake)
    [request] = fake.model_requests()
    assert request.path == "/api/v1/models"
    # Image-only models are absent from OpenRouter's default (text-output) list.
    assert IMAGE_ONLY_MODELS[0] in format_image_models(await _listed(fake), current=FLASH)


def test_without_a_list_the_known_models_are_shown():
    text = format_image_models(None, current=FLASH)
    assert "未能获取模型列表" in text
    assert all(model in text for model in IMAGE_MODELS)
    assert "价格" not in text


def test_a_long_list_is_cut():
    chat = {f"x/m{n:02d}": ModelInfo(f"x/m{n:02d}", ("image",)) for n in range(30)}
    text = format_image_models(Listings(chat=chat), current="x/m00", limit=20)
    assert "x/m19" in text and "x/m20" not in text
    assert "另有 10 个图像模型未列出" in text


# --- one request: arguments over defaults ----------------------------------------------------------


def test_arguments_are_noted_and_defaults_fitted_quietly():
    asked = resolve_request_options(FLASH, "4k", "", "1:4", "", None)
    assert asked.image_config() == {"aspect_ratio": "9:16"}
    assert [a.option for a in asked.adjustments] == ["image_size", "aspect_ratio"]
    assert asked.silent == ()

    configured = resolve_request_options(FLASH, "", "4K", "auto", "8:1", None)
    assert configured.image_config() == {}  # 8:1 has nothing near: dropped, not refused
    assert configured.adjustments == ()
    assert [(a.option, a.asked, a.sent) for a in configured.silent] == [
        ("image_size", "4K", ""),
        ("aspect_ratio", "8:1", ""),
    ]

    with pytest.raises(UnsupportedImageOptionError):
        resolve_request_options(FLASH, "", "", "8:1", "16:9", None)
