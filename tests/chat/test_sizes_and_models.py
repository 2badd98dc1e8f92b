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
    assert "价格：输入 0.3 美元/百万 token" in text
    assert fake.chat_requests() == []


async def test_the_model_command_falls_back_to_the_known_models(
    astrbot, fake, plugin_config, admin
):
    fake.models_status = fake.image_models_status = 503
    astrbot.plugin.pipeline.shared.models.forget()  # nothing cached from the start-up check either
    event = await astrbot.dispatch(make_event("/画图模型", sender_id=admin))
    text = _reply(event)
    assert "未能获取模型列表" in text and all(model in text for model in IMAGE_MODELS)


# --- sizes and ratios written in a command ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4K 海边日落", ("海边日落", "4K", "")),
        ("海边日落 16:9", ("海边日落", "", "16:9")),
        ("2k 9：16 雪山", ("雪山", "2K", "9:16")),
        ("16比9 城市夜景", ("城市夜景", "", "16:9")),
        ("16x9 壁纸", ("壁纸", "", "16:9")),
        ("1:4 4K 长卷山水", ("长卷山水", "4K", "1:4")),
        ("3:5 猫", ("猫", "", "3:5")),  # not a ratio the models know: the pipeline says so
        ("a 4k\nposter of 2K text", ("a\nposter of 2K text", "4K", "")),  # the first size word
        ("1920x1080 壁纸", ("1920x1080 壁纸", "", "")),
        ("5x5 网格", ("5x5 网格", "", "")),
        ("8K 超清壁纸", ("8K 超清壁纸", "", "")),
        ("4K海边日落", ("4K海边日落", "", "")),  # words only: glued to the text it is text
    ],
)
def test_size_and_ratio_words_are_read_from_the_command_text(text, expected):
    from utils.chat.commands import image_option_words

    assert image_option_words(text) == expected


async def test_draw_command_sends_the_size_and_ratio_it_names_and_says_so(
    astrbot, fake, plugin_config
):
    plugin_config["model_name"] = FLASH31
    event = await astrbot.dispatch(make_event("/画图 4K 16:9 海边日落"))
    [request] = fake.chat_requests()
    assert request.prompt == "海边日落"
    assert request.body["image_config"] == {"image_size": "4K", "aspect_ratio": "16:9"}
    assert len(event.sent_images()) == 1
    assert event.sent_texts() == [f"本次按 尺寸 4K、宽高比 16:9 生成（{FLASH31}）。"]


async def test_what_the_model_cannot_draw_is_fitted_and_told(astrbot, fake, plugin_config):
    event = await astrbot.dispatch(make_event("/画图 4k 海边日落 16：9"))  # 2.5 Flash Image
    assert _config(fake) == {"aspect_ratio": "16:9"}
    [reply] = event.sent_texts()
    assert reply.split("\n") == [
        f"本次按 尺寸 约 1K（模型固定）、宽高比 16:9 生成（{FLASH}）。",
        f"注意：当前图像模型 {FLASH} 不能选择尺寸（固定约 1K），没有按 4K 生成。",
    ]

    fake.reset()
    plugin_config["model_name"] = PRO
    event = await astrbot.dispatch(make_event("/画图 1:4 2K 长卷山水"))
    assert _config(fake) == {"aspect_ratio": "9:16", "image_size": "2K"}
    assert event.sent_texts()[0].split("\n") == [
        f"本次按 尺寸 2K、宽高比 9:16 生成（{PRO}）。",
        f"注意：当前图像模型 {PRO} 不支持宽高比 1:4，已改用最接近的 9:16。",
    ]


async def test_edit_and_figure_commands_read_them_too(astrbot, fake, plugin_config, tmp_path):
    from astrbot.core.message.components import Image

    from tests.fakes.openrouter import make_png

    plugin_config["model_name"] = PRO
    photo = tmp_path / "photo.png"
    photo.write_bytes(make_png("a corgi", size=(80, 60)))
    picture = Image.fromFileSystem(str(photo))

    await astrbot.dispatch(make_event("/改图 2K 把它画成油画", [picture]))
    [request] = fake.chat_requests()
    assert request.prompt == "把它画成油画"
    assert request.body["image_config"] == {"image_size": "2K"}

    fake.reset()
    event = await astrbot.dispatch(make_event("/手办化 3:4 4K 蓝色底座", [picture]))
    [request] = fake.chat_requests()
    assert request.body["image_config"] == {"aspect_ratio": "3:4", "image_size": "4K"}
    assert "Additional details from the user: 蓝色底座" in request.prompt
    assert event.sent_texts()[0].startswith("本次按 尺寸 4K、宽高比 3:4 生成")


async def test_a_ratio_word_that_is_no_ratio_is_refused_with_the_valid_ones(
    astrbot, fake, plugin_config
):
    event = await astrbot.dispatch(make_event("/画图 3:5 一只猫"))
    assert fake.chat_requests() == []
    [reply] = event.sent_texts()
    assert reply.startswith("不支持的宽高比“3:5”。可用的宽高比有：1:1、2:3")


async def test_a_plain_command_says_nothing_about_sizes(astrbot, fake, plugin_config):
    event = await astrbot.dispatch(make_event("/画图 海边日落"))
    assert _config(fake) == {}
    assert event.sent_texts() == []


async def test_the_help_lists_sizes_and_ratios(astrbot, fake, plugin_config):
    event = await astrbot.dispatch(make_event("/画图帮助"))
    [text] = event.sent_texts()
    assert "1K、2K 或 4K" in text
    assert "16:9、21:9、1:4、4:1、1:8、8:1" in text
    assert "/画图 4K 16:9 海边日落" in text


async def test_in_english_the_command_says_what_it_drew(astrbot, fake, english):
    english["model_name"] = PRO
    event = await astrbot.dispatch(make_event("/draw 1:4 2K a long scroll"))
    assert _config(fake) == {"aspect_ratio": "9:16", "image_size": "2K"}
    assert event.sent_texts()[0].split("\n") == [
        f"Drawn at size 2K, aspect ratio 9:16 ({PRO}).",
        f"Note: the current image model {PRO} does not support aspect ratio 1:4, so the "
        "nearest one, 9:16, was used.",
    ]
    help_event = await astrbot.dispatch(make_event("/draw_help"))
    assert "write 1K, 2K or 4K (any case) and/or a ratio (1:1, 2:3" in help_event.sent_texts()[0]
    assert "/draw 4K 16:9 sunset over the sea" in help_event.sent_texts()[0]
