"""Sizes, ratios and image models through the real tool and commands: what is sent, what the
chat model is told, what is refused before any request, and /画图模型's listing."""

from __future__ import annotations

import pytest
from astrbot.core.message.components import Plain

from tests.fakes.openrouter import IMAGE_MODELS, IMAGE_ONLY_MODELS
from tests.support.harness import make_event

FLASH, PRO, FLASH31 = IMAGE_MODELS


def _config(fake) -> dict:
    [request] = fake.chat_requests()
    return request.body.get("image_config", {})


@pytest.mark.parametrize(("argument", "sent"), [("4K", "4K"), ("4k", "4K"), (" 2k ", "2K")])
async def test_the_size_argument_is_sent_case_insensitively(
    astrbot, fake, plugin_config, argument, sent
):
    plugin_config["model_name"] = FLASH31
    texts = await astrbot.run_tool(make_event(), image_description="a cat", image_size=argument)
    assert _config(fake) == {"image_size": sent}
    assert "注意" not in texts[0]


async def test_the_configured_size_and_ratio_are_sent(astrbot, fake, plugin_config):
    plugin_config.update(model_name=PRO, image_size="2K", aspect_ratio="16:9")
    await astrbot.run_tool(make_event(), image_description="a cat")
    assert _config(fake) == {"aspect_ratio": "16:9", "image_size": "2K"}


async def test_a_ratio_the_model_lacks_is_mapped_and_the_model_is_told(
    astrbot, fake, plugin_config
):
    plugin_config["model_name"] = PRO
    texts = await astrbot.run_tool(
        make_event(), image_description="a tall scroll", aspect_ratio="1:4", image_size="4K"
    )
    assert _config(fake) == {"aspect_ratio": "9:16", "image_size": "4K"}
    assert f"当前图像模型 {PRO} 不支持宽高比 1:4，已改用最接近的 9:16" in texts[0]


async def test_a_size_the_model_cannot_choose_is_left_out_and_the_model_is_told(
    astrbot, fake, plugin_config
):
    texts = await astrbot.run_tool(make_event(), image_description="a cat", image_size="4K")
    assert _config(fake) == {}  # 2.5 Flash Image takes no image_size
    assert "不能选择尺寸（固定约 1K），没有按 4K 生成" in texts[0]


async def test_a_ratio_too_far_from_any_the_model_draws_is_refused_before_a_request(
    astrbot, fake, plugin_config
):
    texts = await astrbot.run_tool(make_event(), image_description="a banner", aspect_ratio="8:1")
    assert fake.chat_requests() == []
    assert texts[0].count("。") == 1
    assert f"{FLASH} 不支持宽高比 8:1" in texts[0] and FLASH31 in texts[0]


async def test_configured_defaults_the_model_lacks_are_fitted_quietly(astrbot, fake, plugin_config):
    # Set for 3.1 Flash Image, then the model was switched: nobody in the chat asked for them.
    plugin_config.update(image_size="4K", aspect_ratio="8:1")
    texts = await astrbot.run_tool(make_event(), image_description="a cat")
    assert _config(fake) == {}
    assert texts[0].startswith("已生成 1 张图片") and "注意" not in texts[0]


async def test_an_invalid_size_is_explained_without_a_request(astrbot, fake, plugin_config):
    texts = await astrbot.run_tool(make_event(), image_description="a cat", image_size="8K")
    assert fake.chat_requests() == []
    assert "不支持的图片尺寸“8K”" in texts[0] and "1K、2K、4K" in texts[0]


# --- /画图模型 without an argument ------------------------------------------------------------------


def _reply(event) -> str:
    [chain] = event.sent
    return "".join(c.text for c in chain.chain if isinstance(c, Plain))


async def test_the_model_command_lists_image_models_with_abilities_and_prices(
    astrbot, fake, plugin_config, admin
):
    event = await astrbot.dispatch(make_event("/画图模型", sender_id=admin))
    text = _reply(event)
    assert text.startswith(f"当前图像模型：{FLASH}")
    assert all(model in text for model in (*IMAGE_MODELS, *IMAGE_ONLY_MODELS))
    assert "尺寸 1K/2K/4K" in text and "含 1:4、4:1、1:8、8:1" in text
    assert "价格：输入 $0.3/百万 token" in text
    assert fake.chat_requests() == []


async def test_the_model_command_falls_back_to_the_known_models(
    astrbot, fake, plugin_config, admin
):
    fake.models_status = fake.image_models_status = 503
    astrbot.plugin.pipeline.shared.models.forget()  # nothing cached from the start-up check either
    event = await astrbot.dispatch(make_event("/画图模型", sender_id=admin))
    text = _reply(event)
    assert "未能获取模型列表" in text and all(model in text for model in IMAGE_MODELS)
