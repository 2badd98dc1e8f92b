"""Which API each model is asked through, and how, through the real tool and commands: the
Image API for the models only it serves (Seedream 4.5), chat completions for the rest (with
`["image"]` for image-only models), refusals before any request for what a model cannot do, a
404 about modalities told as such, and prices before paying."""

from __future__ import annotations

from astrbot.core.message.components import Image

from tests.fakes.openrouter import (
    IMAGE_MODELS,
    IMAGE_ONLY_MODELS,
    MODALITIES_404,
    TEXT_INPUT_MODELS,
    Reply,
    make_png,
    png_prompt,
)
from tests.fakes.openrouter_images import (
    FLUX_PRO,
    GPT_IMAGE,
    SEEDREAM,
    SEEDREAM_PRICES,
    SEEDREAM_RATIOS,
)
from tests.support.harness import image_path, make_event
from tests.support.images import read_data_url
from tests.support.language import cjk_in
from tests.support.ledger_rows import fresh_id, rows_of

FLASH, PRO, FLASH31 = IMAGE_MODELS


def fresh_user() -> str:
    return fresh_id("route-user-")


# --- the Image API ----------------------------------------------------------------------------------


async def test_seedream_draws_through_the_image_api_and_its_cost_reaches_the_ledger(
    astrbot, fake, plugin_config, picture
):
    plugin_config["model_name"] = SEEDREAM
    user = fresh_user()
    event = make_event("把这张图改成海报", [Image.fromFileSystem(str(picture))], sender_id=user)

    [text] = await astrbot.run_tool(
        event, image_description="a poster of this corgi", image_size="2K", aspect_ratio="16:9"
    )

    assert fake.chat_requests() == []
    [request] = fake.image_requests()
    body = {k: v for k, v in request.body.items() if k != "input_references"}
    assert body == {
        "model": SEEDREAM,
        "prompt": "a poster of this corgi",
        "n": 1,
        "resolution": "2K",
        "aspect_ratio": "16:9",
    }
    [reference] = request.body["input_references"]
    assert reference["type"] == "image_url"
    sent = read_data_url(reference["image_url"]["url"])  # the downscaled reference, as a data URL
    assert sent.size == (80, 60)
    assert "已生成 1 张图片" in text and "参考了 1 张图片" in text and "注意" not in text
    [image] = event.sent_images()
    assert png_prompt(image_path(image).read_bytes()) == "a poster of this corgi"
    [row] = await rows_of(astrbot.plugin, user)
    assert (row.model, row.pictures, row.cost) == (SEEDREAM, 1, SEEDREAM_PRICES["2K"])


async def test_no_more_references_are_sent_than_the_model_takes(
    astrbot, fake, plugin_config, tmp_path
):
    [entry] = [e for e in fake.image_models if e["id"] == SEEDREAM]
    entry["supported_parameters"]["input_references"] = {"type": "range", "min": 0, "max": 1}
    plugin_config["model_name"] = SEEDREAM
    pictures = []
    for name in ("one", "two"):
        path = tmp_path / f"{name}.png"
        path.write_bytes(make_png(name, size=(40, 40)))
        pictures.append(Image.fromFileSystem(str(path)))
    [text] = await astrbot.run_tool(make_event("合成", pictures), image_description="both")
    [request] = fake.image_requests()  # the fake refuses more than the descriptor's max
    assert len(request.body["input_references"]) == 1
    assert "收到 2 张图片，只使用了前 1 张作为参考图" in text


async def test_a_ratio_the_descriptor_lacks_is_fitted_and_the_model_is_told(
    astrbot, fake, plugin_config
):
    plugin_config["model_name"] = SEEDREAM
    assert "5:4" not in SEEDREAM_RATIOS
    [text] = await astrbot.run_tool(make_event(), image_description="a cat", aspect_ratio="5:4")
    [request] = fake.image_requests()
    assert request.body["aspect_ratio"] == "4:3"  # the nearest it draws
    assert f"当前图像模型 {SEEDREAM} 不支持宽高比 5:4，已改用最接近的 4:3" in text


async def test_a_ratio_nothing_near_is_refused_before_any_request(astrbot, fake, plugin_config):
    plugin_config["model_name"] = SEEDREAM
    [text] = await astrbot.run_tool(make_event(), image_description="a banner", aspect_ratio="8:1")
    assert fake.generation_requests() == []
    assert text.count("。") == 1
    assert f"{SEEDREAM} 不支持宽高比 8:1" in text and FLASH31 in text


async def test_a_size_the_descriptor_lacks_is_fitted(astrbot, fake, plugin_config):
    plugin_config["model_name"] = SEEDREAM
    [text] = await astrbot.run_tool(make_event(), image_description="a cat", image_size="1K")
    [request] = fake.image_requests()
    assert request.body["resolution"] == "2K"
    assert "不支持图片尺寸 1K，已改用最接近的 2K" in text


async def test_nothing_chosen_leaves_resolution_and_ratio_to_the_model(
    astrbot, fake, plugin_config
):
    plugin_config["model_name"] = GPT_IMAGE
    [text] = await astrbot.run_tool(make_event(), image_description="a cat")
    [request] = fake.image_requests()
    assert request.body == {"model": GPT_IMAGE, "prompt": "a cat", "n": 1}
    assert "已生成 1 张图片" in text


async def test_a_relay_without_discovery_asks_seedream_through_the_image_api(
    astrbot, fake, plugin_config
):
    """No /images/models there (404): the built-in table knows Seedream is an Image API model."""
    fake.image_models_status = 404
    plugin_config["model_name"] = SEEDREAM
    [text] = await astrbot.run_tool(make_event(), image_description="a cat", image_size="4K")
    assert "已生成 1 张图片" in text
    assert fake.chat_requests() == []
    [request] = fake.image_requests()
    assert request.body["resolution"] == "4K"


# --- chat completions -------------------------------------------------------------------------------


async def test_a_model_on_both_apis_keeps_the_chat_path(astrbot, fake, plugin_config):
    assert any(e["id"] == FLUX_PRO for e in fake.image_models)  # the Image API lists it too
    plugin_config["model_name"] = FLUX_PRO
    [text] = await astrbot.run_tool(make_event(), image_description="a cat")
    assert fake.image_requests() == []
    [request] = fake.chat_requests()
    assert request.body["stream"] is True
    assert "已生成 1 张图片" in text
    # What it takes comes from its Image API descriptor (the chat list declares none).
    fake.requests.clear()
    [text] = await astrbot.run_tool(
        make_event(), image_description="a cat", image_size="4K", aspect_ratio="4:5"
    )
    [request] = fake.chat_requests()
    assert request.body["image_config"] == {"aspect_ratio": "3:4", "image_size": "2K"}
    assert "已改用最接近的 3:4" in text and "已改用最接近的 2K" in text


async def test_an_image_only_model_from_the_catalog_draws_with_image_alone(
    astrbot, fake, plugin_config
):
    plugin_config["model_name"] = IMAGE_ONLY_MODELS[0]
    [text] = await astrbot.run_tool(make_event(), image_description="a cat")
    [request] = fake.chat_requests()
    assert request.body["modalities"] == ["image"]
    assert "已生成 1 张图片" in text


async def test_a_model_that_also_writes_text_is_asked_for_both(astrbot, fake, plugin_config):
    await astrbot.run_tool(make_event(), image_description="a cat")
    [request] = fake.chat_requests()
    assert request.body["modalities"] == ["image", "text"]


async def test_a_text_input_only_model_refuses_a_reference_before_any_request(
    astrbot, fake, plugin_config, picture
):
    plugin_config["model_name"] = TEXT_INPUT_MODELS[0]
    event = make_event("改一下这张图", [Image.fromFileSystem(str(picture))])
    [text] = await astrbot.run_tool(event, image_description="make it blue")
    assert fake.generation_requests() == []
    assert text.count("。") == 1
    assert f"当前图像模型 {TEXT_INPUT_MODELS[0]} 只能根据文字生成图片、不能使用参考图" in text
    assert FLASH in text  # a model that does read pictures
    # Without the picture it draws.
    [text] = await astrbot.run_tool(make_event(), image_description="a blue cat")
    assert "已生成 1 张图片" in text


async def test_the_edit_command_is_refused_for_a_model_that_reads_no_pictures(
    astrbot, fake, plugin_config, picture
):
    plugin_config["model_name"] = TEXT_INPUT_MODELS[0]
    event = await astrbot.dispatch(make_event("/改图 make it blue"))
    [text] = event.sent_texts()
    assert "只能根据文字生成图片" in text
    assert fake.generation_requests() == []


async def test_a_modalities_404_is_told_as_such_never_as_a_retired_model(
    astrbot, fake, plugin_config
):
    fake.enqueue(Reply.error(404, MODALITIES_404))
    [text] = await astrbot.run_tool(make_event(), image_description="a cat")
    assert len(fake.chat_requests()) == 1  # not retried: the same request would get the same
    assert "不存在或已下线" not in text
    assert f"模型 {FLASH} 仍然可用" in text and "输出类型" in text


# --- prices before paying ---------------------------------------------------------------------------


async def test_an_estimate_that_would_pass_the_daily_budget_is_refused_before_sending(
    astrbot, fake, plugin_config, on_day
):
    _, plugin = on_day
    # $0.10 a day: a 2K Seedream picture ($0.04) fits twice; a third would pass it.
    plugin_config.update(model_name=SEEDREAM, daily_budget_usd=0.10, image_size="2K")
    for _ in range(2):
        [text] = await astrbot.run_tool(
            make_event(sender_id=fresh_user()), plugin=plugin, image_description="a cat"
        )
        assert "已生成 1 张图片" in text
    assert len(fake.image_requests()) == 2

    [text] = await astrbot.run_tool(
        make_event(sender_id=fresh_user()), plugin=plugin, image_description="a third cat"
    )
    assert len(fake.image_requests()) == 2  # nothing sent, nothing paid
    assert "这张图预计花费约 0.04 美元" in text and "已用 0.08 美元" in text
    assert "每天共 0.10 美元" in text and "没有发出请求" in text
    # A 4K picture is priced by its own tier: $0.06 would pass what is left of a fresh budget.
    plugin_config.update(daily_budget_usd=0.13, image_size="4K")
    [text] = await astrbot.run_tool(
        make_event(sender_id=fresh_user()), plugin=plugin, image_description="a big cat"
    )
    assert "这张图预计花费约 0.06 美元" in text


async def test_a_model_priced_per_token_is_not_refused_on_an_estimate(
    astrbot, fake, plugin_config, on_day
):
    _, plugin = on_day
    plugin_config.update(model_name=GPT_IMAGE, daily_budget_usd=0.01)
    [text] = await astrbot.run_tool(
        make_event(sender_id=fresh_user()), plugin=plugin, image_description="a cat"
    )
    assert "已生成 1 张图片" in text  # the cost is known only afterwards; then the cap holds
    [text] = await astrbot.run_tool(
        make_event(sender_id=fresh_user()), plugin=plugin, image_description="another"
    )
    assert "已达上限" in text and len(fake.image_requests()) == 1


# --- /画图模型 ---------------------------------------------------------------------------------------


async def test_the_model_list_shows_both_apis_with_abilities_and_prices(
    astrbot, fake, plugin_config, admin
):
    event = await astrbot.dispatch(make_event("/画图模型", sender_id=admin))
    [text] = event.sent_texts()
    lines = text.splitlines()

    def details(model: str) -> str:
        [found] = [lines[i + 1] for i, line in enumerate(lines) if line[2:].startswith(model)]
        return found

    for model in (*IMAGE_MODELS, *IMAGE_ONLY_MODELS, *TEXT_INPUT_MODELS, SEEDREAM, GPT_IMAGE):
        assert details(model)
    seedream = details(SEEDREAM)
    assert "经图像接口" in seedream and "尺寸 2K/4K" in seedream and "8 种宽高比" in seedream
    assert "可改图" in seedream and "2K 约 0.04 美元/张，4K 约 0.06 美元/张" in seedream
    assert "按 token 计费，出图前无法估算" in details(GPT_IMAGE)
    # FLUX.2 Pro is asked through chat completions: its chat price, no Image API label.
    flux = details(FLUX_PRO)
    assert "经图像接口" not in flux and "每次请求 0.03 美元" in flux
    assert "只能文生图" in details(TEXT_INPUT_MODELS[0])
    assert fake.generation_requests() == []


async def test_the_model_list_of_an_instance_being_unloaded_is_the_known_models(
    astrbot, fake, plugin_config, admin, plugin_log
):
    """A command routed to an instance already unloaded (a config save racing it) answers
    with the models the plugin knows, never with AstrBot's raw error line."""
    plugin = type(astrbot.plugin)(astrbot.context, plugin_config)
    await plugin.initialize()
    await plugin.terminate()
    asked_before = len(fake.requests)
    event = make_event("/画图模型", sender_id=admin)
    await plugin.cmd_model(event)
    [text] = event.sent_texts()
    assert FLASH in text and "插件" not in text.splitlines()[0]
    assert len(fake.requests) == asked_before
    assert any("model list without the service's lists" in r.getMessage() for r in plugin_log)


# --- in English -------------------------------------------------------------------------------------


async def test_the_new_refusals_and_prices_are_told_in_english(
    astrbot, fake, english, picture, admin
):
    english["model_name"] = TEXT_INPUT_MODELS[0]
    event = make_event("edit this", [Image.fromFileSystem(str(picture))])
    [refused] = await astrbot.run_tool(event, image_description="make it blue")
    assert "draws from text only and can't use reference pictures" in refused

    english["model_name"] = FLASH
    fake.enqueue(Reply.error(404, MODALITIES_404))
    [modalities] = await astrbot.run_tool(make_event(), image_description="a cat")
    assert f"Model {FLASH} still exists" in modalities

    event = await astrbot.dispatch(make_event("/draw_model", sender_id=admin))
    [listing] = event.sent_texts()
    assert "through the Image API" in listing and "2K about USD 0.04 a picture" in listing
    assert cjk_in(refused, modalities, listing) == []
    assert fake.generation_requests() == [fake.chat_requests()[0]]
