"""Retired or unknown models: named clearly, with the image models that do exist."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import aiohttp

from tests.conftest import REAL_LOOKING_KEYS
from tests.fakes.clock import FakeClock
from tests.fakes.openrouter import IMAGE_MODELS, TEXT_MODELS, Reply
from tests.support.harness import make_event
from tests.support.logs import captured_log
from utils.core.errors import ModelUnavailableError
from utils.core.settings import Settings
from utils.core.workers import CpuPool
from utils.openrouter.model_catalog import ModelCatalog, ModelPrice, parse_models

RETIRED = "google/gemini-2.5-flash-image-preview:free"


def _not_found() -> Reply:
    return Reply.error(404, f"No endpoints found for {RETIRED}.")


async def test_a_retired_model_is_named_with_the_image_models_that_exist(
    astrbot, fake, plugin_config
):
    astrbot.plugin.pipeline.shared.models.forget()
    plugin_config["model_name"] = RETIRED
    fake.enqueue(_not_found(), _not_found())

    texts = await astrbot.run_tool(make_event(), image_description="a cat")
    again = await astrbot.run_tool(make_event(), image_description="a dog")

    for text in (texts[0], again[0]):
        assert f"模型 {RETIRED} 不存在或已下线" in text
        assert all(model in text for model in IMAGE_MODELS)
        assert not any(model in text for model in TEXT_MODELS)
    assert len(fake.model_requests()) == 1  # the list is cached


async def test_without_a_model_list_the_user_still_hears_the_model_is_gone(
    astrbot, fake, plugin_config
):
    astrbot.plugin.pipeline.shared.models.forget()
    plugin_config["model_name"] = RETIRED
    fake.models_status = fake.image_models_status = 503
    fake.enqueue(_not_found())
    texts = await astrbot.run_tool(make_event(), image_description="a cat")
    assert texts == [f"模型 {RETIRED} 不存在或已下线，请管理员在插件配置中更换模型。"]


class RecordingCpu(CpuPool):
    """The plugin's worker pool, noting what it was given to run."""

    def __init__(self) -> None:
        super().__init__(1)
        self.ran: list[object] = []

    async def run(self, fn, /, *args):
        self.ran.append(fn)
        return await super().run(fn, *args)


async def test_a_list_is_parsed_on_the_workers_not_on_the_loop(fake):
    """The chat model list is 1-2 MB of JSON: parsed in a worker, not on the event loop."""
    cpu = RecordingCpu()
    try:
        catalog = ModelCatalog(clock=FakeClock(), cpu=cpu)
        settings = Settings.from_config({"custom_api_base": fake.base_url})
        async with aiohttp.ClientSession() as session:
            listed = await catalog.listings(session, settings)
    finally:
        cpu.close()
    assert cpu.ran == [parse_models, parse_models]  # both lists
    assert listed.chat is not None and listed.chat[IMAGE_MODELS[0]].makes_images


async def test_the_list_is_cached_for_its_ttl(fake):
    clock = FakeClock()
    catalog = ModelCatalog(ttl=60, clock=clock)
    settings = Settings.from_config({"custom_api_base": fake.base_url})
    async with aiohttp.ClientSession() as session:
        first = await catalog.models(session, settings)
        await catalog.models(session, settings)
        assert len(fake.model_requests()) == 1
        clock.advance(61)
        await catalog.models(session, settings)
    assert len(fake.model_requests()) == 2
    assert first is not None and first[IMAGE_MODELS[0]].makes_images
    assert not first[TEXT_MODELS[0]].makes_images


async def test_a_gateway_listing_bare_ids_gives_no_suggestions_and_no_warning(fake):
    fake.models = [{"id": "some/model"}, {"id": RETIRED, "object": "model"}]
    fake.image_models_status = 404  # a gateway without OpenRouter's Image API
    catalog = ModelCatalog()
    settings = Settings.from_config({"custom_api_base": fake.base_url, "model_name": RETIRED})
    async with aiohttp.ClientSession() as session:
        with captured_log() as log:
            await catalog.check_configured_model(session, settings)
        models = await catalog.models(session, settings)
        assert models is not None and models[RETIRED].output_modalities is None
        error = await catalog.explain_missing_model(
            session, settings, ModelUnavailableError("HTTP 404", RETIRED)
        )
    assert error.suggestions == ()
    assert log.at(logging.WARNING) == []


async def _until(condition, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


def _plugin(astrbot, fake, model: str):
    config = {
        "openrouter_api_keys": [REAL_LOOKING_KEYS[0]],
        "custom_api_base": fake.base_url,
        "model_name": model,
    }
    return type(astrbot.plugin)(context=astrbot.context, config=config)


async def test_start_up_warns_when_the_model_cannot_make_images(astrbot, fake):
    for model, words in [
        (TEXT_MODELS[0], "does not list image output"),
        (RETIRED, "unknown or retired"),
    ]:
        plugin = _plugin(astrbot, fake, model)
        with captured_log() as log:
            await plugin.initialize()
            try:
                await _until(lambda w=words: any(w in m for m in log.at(logging.WARNING)))
            finally:
                await plugin.terminate()
        [warning] = [m for m in log.at(logging.WARNING) if model in m]
        assert IMAGE_MODELS[0] in warning


async def test_start_up_is_quiet_for_an_image_model(astrbot, fake):
    plugin = _plugin(astrbot, fake, IMAGE_MODELS[0])
    with captured_log() as log:
        await plugin.initialize()
        await _until(lambda: "/api/v1/models" in [r.path for r in fake.requests])
        await plugin.terminate()
    assert not any("configured model" in m for m in log.at(logging.WARNING))


async def test_start_up_never_waits_for_the_model_list(astrbot, fake):
    fake.models_gate = asyncio.Event()  # the list does not come until released
    plugin = _plugin(astrbot, fake, RETIRED)
    await plugin.initialize()  # returns although the list is still pending
    await _until(lambda: len(fake.model_requests()) == 1)
    assert not fake.models_gate.is_set()
    await plugin.terminate()  # cancels the pending check
    fake.models_gate.set()


# --- what the list says about each model ----------------------------------------------------------


def test_names_modalities_and_prices_are_read():
    body = json.dumps(
        {
            "data": [
                {
                    "id": "google/gemini-3-pro-image-preview",
                    "name": " Google: Nano Banana Pro ",
                    "architecture": {
                        "input_modalities": ["image", "text"],
                        "output_modalities": ["image", "text"],
                    },
                    "pricing": {"prompt": "0.000002", "completion": "0.000012", "request": "0"},
                    "supported_parameters": ["max_tokens", "seed"],
                },
                {"id": "router/auto", "pricing": {"prompt": "-1", "completion": "x"}},
                {"id": "text/only", "architecture": {"input_modalities": ["text"]}},
            ]
        }
    ).encode()
    models = parse_models(body)
    pro = models["google/gemini-3-pro-image-preview"]
    assert pro.name == "Google: Nano Banana Pro"
    assert pro.takes_images is True and pro.makes_images
    assert pro.price == ModelPrice(prompt=2e-6, completion=1.2e-5, request=0.0)
    # A list of parameter names says nothing about image_config values.
    assert pro.image_sizes is None and pro.aspect_ratios is None
    assert models["router/auto"].price == ModelPrice()  # "varies" and garbage: not known
    assert not models["router/auto"].price.known
    assert models["text/only"].takes_images is False
    assert models["router/auto"].takes_images is None


def test_declared_image_config_values_are_read_canonically():
    entry = {
        "id": "acme/painter",
        "architecture": {"output_modalities": ["image"]},
        "supported_parameters": {
            "resolution": {"type": "enum", "values": ["0.5K", "1k", "2K", "4K", "4K"]},
            "aspect_ratio": {"type": "enum", "values": ["1:1", "16:9", "9:21", "8:1"]},
        },
    }
    [info] = parse_models(json.dumps({"data": [entry]}).encode()).values()
    assert info.image_sizes == ("1K", "2K", "4K")  # 0.5K is no size we send
    assert info.aspect_ratios == ("1:1", "16:9", "8:1")
