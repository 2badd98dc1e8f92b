"""Reference pictures beyond the message's own: avatars of @-mentioned people and of the sender
(served by a fake avatar host through `avatar_url_template`), and the pictures inside merged-
forward messages (fetched from the fake NapCat's OneBot `get_forward_msg`). Everything runs
through the real plugin: the tool through AstrBot's executor, commands through its pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from astrbot.core.message.components import At, Forward, Image, Reply

from tests.fakes.avatars import FakeAvatarHost
from tests.fakes.napcat import (
    forward_segment,
    forwarded,
    image_segment,
    text_segment,
)
from tests.support import images as img
from tests.support.harness import make_event, make_qq_event
from utils.chat.sources import avatar_url, pictures_in_forward
from utils.core.settings import DEFAULT_AVATAR_URL_TEMPLATE, Settings

BOT = "99999"  # the self_id of the test events
SENDER = "10001"
BLUE = (30, 60, 200)
GREEN = (40, 180, 60)
YELLOW = (230, 210, 40)
PURPLE = (140, 40, 160)
ORANGE = (240, 140, 20)
# Avatars: one colour per person.
ZHANG, LI, ME, WANG = "30003", "30004", SENDER, "30005"
COLORS = {ZHANG: (200, 40, 40), LI: (40, 200, 200), ME: (250, 250, 250), WANG: (20, 20, 20)}


@pytest_asyncio.fixture(loop_scope="session")
async def avatars() -> AsyncIterator[FakeAvatarHost]:
    host = FakeAvatarHost()
    await host.start()
    host.colors.update(COLORS)
    yield host
    await host.stop()


@pytest.fixture
def config(plugin_config, avatars):
    plugin_config["avatar_url_template"] = avatars.template
    return plugin_config


def colors_sent(fake) -> list[tuple[int, int, int]]:
    """The colour of each reference picture the image model got, in order."""
    [request] = fake.chat_requests()
    return [img.read_data_url(url).pixel(8, 8)[:3] for url in request.image_parts]


def assert_colors(fake, expected: list[tuple[int, int, int]]) -> None:
    sent = colors_sent(fake)
    assert len(sent) == len(expected), sent
    for got, want in zip(sent, expected, strict=True):
        assert img.close_to(got, want), (got, want)


def picture(color: tuple[int, int, int]) -> Image:
    return Image.fromBase64(img.b64(img.solid(color)))


def at(user_id: str, name: str = "") -> At:
    return At(qq=user_id, name=name)


# --- avatars of @-mentioned people ----------------------------------------------------------


async def test_mentioned_avatars_follow_the_real_pictures_and_never_the_bots(
    astrbot, fake, config, avatars
):
    event = make_event(
        "@张三(30003) @李四(30004) 把这张图和他们俩画在一起",
        [at(BOT), picture(BLUE), at(ZHANG, "张三"), at(LI, "李四"), at(ZHANG, "张三")],
    )
    texts = await astrbot.run_tool(event, image_description="the three of them together")

    assert_colors(fake, [BLUE, COLORS[ZHANG], COLORS[LI]])
    assert avatars.requested == [ZHANG, LI]  # each once, the bot never
    assert "参考了 3 张图片（其中 2 个头像）" in texts[0]


async def test_avatars_share_the_reference_limit_after_pictures(astrbot, fake, config, avatars):
    config["max_reference_images"] = 2
    event = make_event("合成一张", [picture(BLUE), at(ZHANG, "张三"), picture(GREEN)])
    texts = await astrbot.run_tool(event, image_description="merge")

    assert_colors(fake, [BLUE, GREEN])
    assert avatars.requested == []
    assert "共有 3 张参考图（其中 1 个头像），只使用了前 2 张（图片在前，头像在后）" in texts[0]


async def test_the_at_that_replying_adds_is_not_an_avatar_request(astrbot, fake, config, avatars):
    # QQ puts an @ of the quoted message's sender into a reply: the picture is what is meant.
    quoted = Reply(id="51", chain=[picture(YELLOW)], sender_id=WANG, message_str="")
    event = make_event("@王五(30005) 改成油画", [quoted, at(WANG, "王五")])
    await astrbot.run_tool(event, image_description="make it an oil painting")

    assert_colors(fake, [YELLOW])
    assert avatars.requested == []


async def test_no_avatars_when_the_model_wants_no_references(astrbot, fake, config, avatars):
    event = make_event("随便画一只猫，@张三(30003) 看看", [at(ZHANG, "张三")])
    await astrbot.run_tool(event, image_description="a cat", use_reference_images=False)

    assert fake.chat_requests()[0].image_parts == []
    assert avatars.requested == []


async def test_an_avatar_that_fails_is_named_and_skipped(astrbot, fake, config, avatars):
    avatars.status[LI] = 404
    event = make_event("画他们", [at(ZHANG, "张三"), at(LI, "李四")])
    texts = await astrbot.run_tool(event, image_description="them")

    assert_colors(fake, [COLORS[ZHANG]])
    assert "@李四 的头像下载失败，已跳过。" in texts[0]


# --- the sender's own avatar ----------------------------------------------------------------


@pytest.mark.parametrize("flag", [True, "true"])
async def test_own_avatar_through_the_tool_argument(astrbot, fake, config, avatars, flag):
    event = make_event("用我的头像画一张赛博朋克风的画像", [picture(BLUE)], sender_id=SENDER)
    await astrbot.run_tool(event, image_description="cyberpunk portrait", use_sender_avatar=flag)

    assert_colors(fake, [BLUE, COLORS[ME]])
    assert avatars.requested == [ME]


async def test_own_avatar_only_when_asked(astrbot, fake, config, avatars):
    event = make_event("画一只猫", sender_id=SENDER)
    await astrbot.run_tool(event, image_description="a cat")
    assert fake.chat_requests()[0].image_parts == []
    assert avatars.requested == []


async def test_own_avatar_even_when_pictures_are_left_out(astrbot, fake, config, avatars):
    event = make_event("只用我的头像", [picture(BLUE)], sender_id=SENDER)
    await astrbot.run_tool(
        event, image_description="me", use_reference_images=False, use_sender_avatar=True
    )
    assert_colors(fake, [COLORS[ME]])


# --- commands ---------------------------------------------------------------------------------


async def test_figure_of_a_mentioned_person(astrbot, fake, config, avatars):
    event = make_event("/手办化 @张三(30003) 拿着剑", [at(ZHANG, "张三")])
    await astrbot.dispatch(event)

    assert_colors(fake, [COLORS[ZHANG]])
    prompt = fake.chat_requests()[0].prompt
    assert "collectible figure" in prompt
    # The mention is the picture, not words of the description.
    assert "张三" not in prompt and "30003" not in prompt and "拿着剑" in prompt


@pytest.mark.parametrize("option", ["我", "我的头像", "--me"])
async def test_figure_of_ones_own_avatar(astrbot, fake, config, avatars, option):
    event = await astrbot.dispatch(make_event(f"/手办化 {option}", sender_id=SENDER))
    assert_colors(fake, [COLORS[ME]])
    assert "collectible figure" in fake.chat_requests()[0].prompt
    assert option not in fake.chat_requests()[0].prompt
    assert event.sent_images()


async def test_draw_with_own_avatar_option(astrbot, fake, config, avatars):
    await astrbot.dispatch(make_event("/画图 我的头像 变成水彩画", sender_id=SENDER))
    assert_colors(fake, [COLORS[ME]])
    assert fake.chat_requests()[0].prompt == "变成水彩画"


async def test_words_that_merely_start_with_me_are_a_description(astrbot, fake, config, avatars):
    await astrbot.dispatch(make_event("/画图 我在海边冲浪", sender_id=SENDER))
    assert fake.chat_requests()[0].image_parts == []
    assert fake.chat_requests()[0].prompt == "我在海边冲浪"


async def test_avatars_switched_off_by_an_empty_template(astrbot, fake, config, avatars):
    config["avatar_url_template"] = ""
    event = await astrbot.dispatch(make_event("/手办化 @张三(30003)", [at(ZHANG, "张三")]))
    assert fake.chat_requests() == []
    assert avatars.requested == []
    [text] = event.sent_texts()
    assert text.startswith("头像参考图已被管理员关闭，头像没有用作参考图")


async def test_other_platforms_say_avatars_are_not_available(astrbot, fake, config, avatars):
    event = make_event("/手办化 我", sender_id=SENDER, platform="telegram")
    await astrbot.dispatch(event)
    assert fake.chat_requests() == []
    [text] = event.sent_texts()
    assert text.startswith("当前平台无法获取头像（只有 QQ 支持）")

    # Beside a real picture it is a note, and the picture is still used.
    event = make_event("画我", [picture(GREEN)], sender_id=SENDER, platform="telegram")
    texts = await astrbot.run_tool(event, image_description="me", use_sender_avatar=True)
    assert_colors(fake, [GREEN])
    assert "当前平台无法获取头像" in texts[0]
    assert avatars.requested == []


# --- merged-forward messages ------------------------------------------------------------------


def _serve(fake, name: str, color: tuple[int, int, int]) -> str:
    return fake.serve(name, img.solid(color), content_type="image/png")


async def test_pictures_inside_a_merged_forward_are_references(astrbot, fake, config, napcat):
    inner = [forwarded(20006, "赵六", image_segment(_serve(fake, "inner.png", PURPLE)))]
    napcat.forwards["7412"] = [
        forwarded(20001, "甲", text_segment("看这张"), image_segment(_serve(fake, "a.png", GREEN))),
        forwarded(20002, "乙", forward_segment("inner", inner)),
        forwarded(20003, "丙", image_segment(_serve(fake, "b.png", YELLOW))),
    ]
    event = make_qq_event(
        napcat.api_root, "把这些图拼在一起", components=[picture(BLUE), Forward(id="7412")]
    )
    texts = await astrbot.run_tool(event, image_description="a collage")

    # The message's own picture, then the forward's, in its order (a nested forward inline).
    assert_colors(fake, [BLUE, GREEN, PURPLE, YELLOW])
    [call] = napcat.actions("get_forward_msg")
    assert call["message_id"] == "7412" and call["self_id"] == int(BOT)
    assert "参考了 4 张图片" in texts[0]


async def test_a_forward_in_the_quoted_message_counts_and_is_capped(astrbot, fake, config, napcat):
    config["max_reference_images"] = 2
    napcat.forwards["900"] = [
        forwarded(
            20001,
            "甲",
            *(
                image_segment(_serve(fake, f"{i}.png", c))
                for i, c in enumerate((GREEN, YELLOW, ORANGE))
            ),
        )
    ]
    quoted = Reply(id="52", chain=[Forward(id="900")], sender_id="20001", message_str="")
    event = make_qq_event(napcat.api_root, "用这些图", components=[quoted])
    texts = await astrbot.run_tool(event, image_description="use these")

    assert_colors(fake, [GREEN, YELLOW])
    assert "收到 3 张图片，只使用了前 2 张作为参考图。" in texts[0]


async def test_a_forward_that_cannot_be_fetched_is_skipped(
    astrbot, fake, config, napcat, plugin_log
):
    event = make_qq_event(
        napcat.api_root, "参考这些", components=[picture(BLUE), Forward(id="expired")]
    )
    texts = await astrbot.run_tool(event, image_description="like these")

    assert_colors(fake, [BLUE])
    assert "合并转发消息里的图片没能读取，已跳过。" in texts[0]
    assert any("merged forward expired not read" in r.getMessage() for r in plugin_log)


async def test_figure_from_a_forwarded_picture(astrbot, fake, config, napcat):
    napcat.forwards["31"] = [forwarded(20001, "甲", image_segment(_serve(fake, "f.png", ORANGE)))]
    event = make_qq_event(napcat.api_root, "/手办化", components=[Forward(id="31")])
    await astrbot.dispatch(event)
    assert_colors(fake, [ORANGE])


async def test_a_forward_elsewhere_is_a_note(astrbot, fake, config):
    event = make_event("参考", [picture(BLUE), Forward(id="1")], platform="telegram")
    texts = await astrbot.run_tool(event, image_description="like this")
    assert_colors(fake, [BLUE])
    assert "合并转发消息里的图片没能读取" in texts[0]


# --- the pieces -------------------------------------------------------------------------------


def test_other_forward_answer_shapes():
    url = "https://multimedia.nt.qq.com.cn/download?appid=1407&fileid=abc"
    go_cqhttp = {"messages": [{"content": [image_segment(url)], "sender": {"nickname": "a"}}]}
    onebot_nodes = {"message": [{"type": "node", "data": {"content": [image_segment(url)]}}]}
    for answer in (go_cqhttp, onebot_nodes):
        [image] = pictures_in_forward(answer)
        assert image.url == url
    assert pictures_in_forward(None) == [] and pictures_in_forward({"messages": "x"}) == []


def test_the_default_template_is_qqs_largest_public_avatar():
    assert Settings.from_config({}).avatar_url_template == DEFAULT_AVATAR_URL_TEMPLATE
    assert avatar_url(DEFAULT_AVATAR_URL_TEMPLATE, "123456") == (
        "https://q1.qlogo.cn/g?b=qq&nk=123456&s=640"
    )
    # Only QQ numbers reach the link; a template without {user_id} or http(s) gives none.
    assert avatar_url(DEFAULT_AVATAR_URL_TEMPLATE, "12/../x") is None
    assert avatar_url("https://example.com/avatar.png", "123") is None
    assert avatar_url("file:///etc/{user_id}", "123") is None
    assert Settings.from_config({"images": {"avatar_url_template": ""}}).avatar_url_template == ""
