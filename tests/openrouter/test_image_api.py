"""The Image API piece by piece: discovery read into capabilities, the route each model takes,
prices and estimates, the client's second transport on the wire, and the lists' caching."""

from __future__ import annotations

import json

import aiohttp
import pytest

from tests.fakes import openrouter_images as fake_images
from tests.fakes.clock import FakeClock
from tests.fakes.openrouter import IMAGE_MODELS, IMAGE_ONLY_MODELS, MODALITIES_404, Reply
from tests.fakes.openrouter_images import FLUX_PRO, GPT_IMAGE, SEEDREAM, images_answer
from tests.support import images as img
from utils.core.clock import Deadline
from utils.core.errors import (
    ModalitiesUnsupportedError,
    ModelUnavailableError,
    RateLimitedError,
    ReferencesNotAcceptedError,
)
from utils.core.image_options import BASE_ASPECT_RATIOS
from utils.core.settings import Settings
from utils.openrouter.answers import classify_error
from utils.openrouter.capabilities import (
    BUILT_IN,
    CHAT_API,
    IMAGE_ONLY,
    IMAGES_API,
    LIST,
    TEXT_AND_IMAGE,
    UNKNOWN,
    check_references,
    resolve_image_options,
    route_for,
)
from utils.openrouter.image_pricing import (
    Asked,
    ImageEndpoint,
    PriceLine,
    estimate,
    parse_endpoints,
    price_tiers,
    request_estimate,
)
from utils.openrouter.model_catalog import (
    FAILURE_TTL,
    Listings,
    ModelCatalog,
    ModelInfo,
    parse_models,
)
from utils.ttp import GenerationRequest, OpenRouterClient

FLASH = IMAGE_MODELS[0]


def _discovery() -> dict[str, ModelInfo]:
    body = json.dumps({"data": fake_images.default_discovery()}).encode()
    return parse_models(body)


# --- discovery --------------------------------------------------------------------------------------


def test_discovery_is_read_into_what_each_model_takes():
    models = _discovery()
    seedream = models[SEEDREAM]
    assert seedream.name == "ByteDance Seed: Seedream 4.5"
    assert seedream.image_sizes == ("2K", "4K")
    assert seedream.aspect_ratios == tuple(fake_images.SEEDREAM_RATIOS)
    assert (seedream.max_references, seedream.n_range) == (14, (1, 4))
    assert seedream.makes_images and seedream.takes_images is True
    gpt = models[GPT_IMAGE]
    assert gpt.image_sizes is None  # no resolution parameter: sizes not known
    assert gpt.aspect_ratios == ("1:1", "3:2", "2:3")  # "auto" is no ratio we send


def test_a_model_that_takes_no_references_reads_no_pictures():
    entry = fake_images.discovery_entry(SEEDREAM)
    entry["supported_parameters"] = {"input_references": {"type": "range", "min": 0, "max": 0}}
    [info] = parse_models(json.dumps({"data": [entry]}).encode()).values()
    assert info.takes_images is False


# --- routes -----------------------------------------------------------------------------------------


def _chat(*entries: ModelInfo) -> dict[str, ModelInfo]:
    return {e.id: e for e in entries}


CHAT = _chat(
    ModelInfo(FLASH, ("image", "text"), input_modalities=("image", "text")),
    ModelInfo(FLUX_PRO, ("image",), input_modalities=("text", "image")),
    ModelInfo("acme/words", ("text",)),
)


@pytest.mark.parametrize(
    ("model", "listed", "api", "modalities", "source"),
    [
        (FLASH, Listings(CHAT, _discovery()), CHAT_API, TEXT_AND_IMAGE, LIST),
        (SEEDREAM, Listings(CHAT, _discovery()), IMAGES_API, IMAGE_ONLY, LIST),
        # On both: chat completions keeps it, asked for the image alone.
        (FLUX_PRO, Listings(CHAT, _discovery()), CHAT_API, IMAGE_ONLY, LIST),
        # Chat completions lists it but not as an image model; the Image API does.
        (
            "acme/words",
            Listings(CHAT, {"acme/words": ModelInfo("acme/words", ("image",))}),
            IMAGES_API,
            IMAGE_ONLY,
            LIST,
        ),
        # No lists at all: the built-in table, else chat completions as every version did.
        (SEEDREAM, None, IMAGES_API, IMAGE_ONLY, BUILT_IN),
        (SEEDREAM, Listings(CHAT, {}), IMAGES_API, IMAGE_ONLY, BUILT_IN),
        (FLASH, None, CHAT_API, TEXT_AND_IMAGE, BUILT_IN),
        ("acme/painter-9", Listings(CHAT, _discovery()), CHAT_API, TEXT_AND_IMAGE, UNKNOWN),
    ],
)
def test_each_model_takes_its_route(model, listed, api, modalities, source):
    route = route_for(model, listed)
    assert (route.api, route.modalities, route.source) == (api, modalities, source)


def test_the_image_api_route_carries_the_descriptor():
    resolved = resolve_image_options(SEEDREAM, "1K", "1:1", Listings(CHAT, _discovery()))
    assert resolved.route is not None and resolved.route.api == IMAGES_API
    assert (resolved.image_size, resolved.aspect_ratio) == ("2K", "1:1")
    assert resolved.capabilities.max_references == 14
    # A model chat completions serves too is described by its Image API entry.
    both = resolve_image_options(FLUX_PRO, "4K", None, Listings(CHAT, _discovery()))
    assert both.route.api == CHAT_API and both.image_size == "2K"
    # The built-in table stands in for a relay without discovery.
    table = resolve_image_options(SEEDREAM, "4K", "4:5", None)
    assert table.capabilities.ratios == BASE_ASPECT_RATIOS and table.image_size == "4K"


def test_references_are_refused_for_a_model_that_reads_none():
    painter = ModelInfo("acme/painter", ("image",), input_modalities=("text",))
    listed = Listings(_chat(*CHAT.values(), painter), _discovery())
    route = route_for("acme/painter", listed)
    check_references(route, 0, False, listed)  # text only: fine
    with pytest.raises(ReferencesNotAcceptedError) as caught:
        check_references(route, 1, False, listed)
    assert caught.value.models == (FLASH, FLUX_PRO)
    with pytest.raises(ReferencesNotAcceptedError):
        check_references(route, 0, True, listed)  # an edit command with no picture yet
    check_references(route_for("acme/unknown", listed), 3, True, listed)  # not known: sent


# --- prices -----------------------------------------------------------------------------------------


def _endpoints(model: str) -> tuple[ImageEndpoint, ...]:
    return parse_endpoints(json.dumps(fake_images.endpoints_answer(model)).encode())


def test_a_resolution_tier_prices_the_picture():
    seedream = _endpoints(SEEDREAM)
    assert seedream[0].pricing[0] == PriceLine("output_image", "image", 0.04, "2k")
    assert estimate(seedream, Asked("2K")) == 0.04
    assert estimate(seedream, Asked("4K", n=2)) == 0.12
    assert estimate(seedream, Asked()) == 0.06  # left to the model: the dearest tier counts
    assert price_tiers(seedream, ("2K", "4K")) == (("2K", 0.04), ("4K", 0.06))


def test_per_megapixel_counts_the_size_at_the_dearest_provider():
    flux = _endpoints(FLUX_PRO)
    assert len(flux) == 2
    # 2K = 2048 x 2048 px at most = 4.19 MP, at the dearer provider's $0.03.
    assert estimate(flux, Asked("2K")) == pytest.approx(0.03 * 4.194304)
    assert estimate(flux, Asked()) is None  # no size: unknown, never zero
    assert request_estimate(flux, None, ("1K", "2K")) == pytest.approx(0.03 * 4.194304)


def test_per_token_pictures_have_no_estimate():
    gpt = _endpoints(GPT_IMAGE)
    assert estimate(gpt, Asked("1K")) is None and price_tiers(gpt, None) == ()


def test_references_and_requests_are_added():
    endpoint = ImageEndpoint(
        "p",
        (
            PriceLine("output_image", "image", 0.03, "1k"),
            PriceLine("output_image", "image", 0.075, "2k"),
            PriceLine("input_image", "image", 0.003),
            PriceLine("input_image", "megapixel", 0.001),
            PriceLine("request", "request", 0.01),
        ),
    )
    # 1K tier + two references (per picture and per megapixel of 4 MP) + the request.
    assert estimate(
        [endpoint], Asked("1K", references=2, reference_megapixels=4.0)
    ) == pytest.approx(0.03 + 2 * (0.003 + 0.004) + 0.01)
    assert estimate([endpoint], Asked("2K")) == pytest.approx(0.075 + 0.01)
    assert estimate([ImageEndpoint("empty", ())], Asked("1K")) is None


def test_a_reference_fee_per_request_counts_once_and_only_with_references():
    """An `input_image` line priced per request: no reference sent, nothing to pay (an
    over-estimate could refuse a request under a money cap); some sent, paid once."""
    endpoint = ImageEndpoint(
        "p",
        (
            PriceLine("output_image", "image", 0.04),
            PriceLine("input_image", "request", 0.02),
        ),
    )
    assert estimate([endpoint], Asked("1K")) == pytest.approx(0.04)
    assert estimate([endpoint], Asked("1K", references=3)) == pytest.approx(0.04 + 0.02)


# --- the client's Image API transport ----------------------------------------------------------------


@pytest.fixture
def client(client_for) -> OpenRouterClient:
    return client_for(SEEDREAM)


def _request(**changes) -> GenerationRequest:
    fields = {"prompt": "a cat", "api": IMAGES_API, "image_size": "2K", **changes}
    return GenerationRequest(**fields)


async def test_a_big_picture_is_decoded_as_it_arrives_and_stored_whole(client, fake, tmp_path):
    big = img.png_with_text(img.noisy_png((300, 300)), "prompt", "big one")
    assert len(big) * 4 / 3 > 64 * 1024  # diverted to a temp file while it is read
    fake.enqueue(Reply(json_body=images_answer([big, big[:]], 0.08)))
    result = await client.generate(_request(n=2), Deadline.start(30))
    assert [image.path.read_bytes() for image in result.images] == [big]  # duplicates dropped
    assert result.usage is not None and result.usage.cost == 0.08
    assert not list((tmp_path / "images").glob(".*"))  # no temp file left


async def test_a_url_answer_and_a_media_type_are_read(client, fake):
    picture = img.solid((10, 200, 30), fmt="JPEG")
    url = fake.serve("result.jpg", picture, content_type="image/jpeg")
    fake.enqueue(Reply(json_body={"data": [{"url": url}], "usage": {"cost": 0.01}}))
    result = await client.generate(_request(), Deadline.start(30))
    assert result.images[0].path.read_bytes() == picture


async def test_an_error_in_a_200_answer_is_classified(client, fake):
    fake.enqueue(Reply(json_body={"error": {"code": 429, "message": "slow down"}}))
    with pytest.raises(RateLimitedError):
        await client.generate(_request(), Deadline.start(30))


def test_a_modalities_404_is_not_a_retired_model():
    body = json.dumps({"error": {"code": 404, "message": MODALITIES_404}}).encode()
    error = classify_error(404, body, {}, IMAGE_ONLY_MODELS[0])
    assert isinstance(error, ModalitiesUnsupportedError)
    assert not isinstance(error, ModelUnavailableError)
    gone = json.dumps({"error": {"code": 404, "message": "No endpoints found for x/y."}}).encode()
    assert isinstance(classify_error(404, gone, {}, "x/y"), ModelUnavailableError)


# --- caching ----------------------------------------------------------------------------------------


async def test_discovery_and_prices_are_cached_and_a_missing_api_is_remembered(fake):
    clock = FakeClock()
    catalog = ModelCatalog(ttl=60, clock=clock)
    settings = Settings.from_config({"custom_api_base": fake.base_url})
    async with aiohttp.ClientSession() as session:
        listed = await catalog.listings(session, settings)
        assert listed.images is not None and SEEDREAM in listed.images
        assert await catalog.endpoints(session, settings, SEEDREAM)
        await catalog.listings(session, settings)
        await catalog.endpoints(session, settings, SEEDREAM)
        assert len(fake.discovery_requests()) == 2 and len(fake.model_requests()) == 1

        fake.image_models_status = 404  # now a relay without the Image API
        clock.advance(61)
        assert (await catalog.image_models(session, settings)) == {}
        clock.advance(30)
        assert (await catalog.image_models(session, settings)) == {}  # cached: no new request
        assert len(fake.discovery_requests()) == 3
        assert await catalog.endpoints(session, settings, "nobody/none") == ()

        fake.image_models_status = 503  # down: asked again only after FAILURE_TTL
        clock.advance(61)
        assert await catalog.image_models(session, settings) is None
        await catalog.image_models(session, settings)
        before = len(fake.discovery_requests())
        clock.advance(FAILURE_TTL + 1)
        fake.image_models_status = 200
        assert SEEDREAM in (await catalog.image_models(session, settings) or {})
        assert len(fake.discovery_requests()) == before + 1
