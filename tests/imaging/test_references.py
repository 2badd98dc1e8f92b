"""Reference images: from the message and a quoted reply, every source, bounded, shrunk, labelled."""

from __future__ import annotations

from pathlib import Path

import pytest
from astrbot.core.message.components import Image, Reply

from tests.fakes.openrouter import data_url
from tests.support import images as img
from tests.support.harness import make_event
from tests.support.logs import captured_log

BLUE = (30, 60, 200)
GREEN = (40, 180, 60)
YELLOW = (230, 210, 40)
PURPLE = (140, 40, 160)
ORANGE = (240, 140, 20)
CYAN = (30, 200, 210)


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("photos") / "IMG_20261101_101010.jpg"
    path.write_bytes(img.phone_photo())
    return path


def _sent(fake) -> list[img.SentImage]:
    requests = fake.chat_requests()
    assert len(requests) == 1
    return [img.read_data_url(url) for url in requests[0].image_parts]


def _assert_phone_photo_prepared(sent: img.SentImage, photo: Path) -> None:
    assert sent.mime == "image/jpeg" and sent.format == "JPEG"
    # EXIF orientation 6 applied: the 4000x3000 landscape pixels become a 1536x2048 portrait...
    assert sent.size == (1536, 2048)
    # ...with the stored top-left corner turned to the top-right, and no tag left to apply twice.
    assert img.close_to(sent.pixel(sent.size[0] - 40, 40), img.RED)
    assert not img.close_to(sent.pixel(40, 40), img.RED)
    assert not sent.has_exif_orientation
    size_on_disk = photo.stat().st_size
    assert 3_000_000 <= size_on_disk <= 5_500_000
    assert len(sent.data) < size_on_disk / 2
    print(f"\n4000x3000 photo: {size_on_disk} bytes on disk -> {len(sent.data)} bytes uploaded")


async def test_photo_in_the_message_is_oriented_shrunk_and_sent_as_jpeg(
    astrbot, fake, plugin_config, photo
):
    event = make_event("把这张照片改成水彩画", [Image.fromFileSystem(str(photo))])
    texts = await astrbot.run_tool(event, image_description="turn this photo into a watercolor")

    [sent] = _sent(fake)
    _assert_phone_photo_prepared(sent, photo)
    assert "已生成 1 张图片" in texts[0] and "参考了 1 张图片" in texts[0]
    assert len(event.sent_images()) == 1


async def test_photo_in_a_quoted_reply_is_downloaded_and_prepared(
    astrbot, fake, plugin_config, photo
):
    # The shape aiocqhttp (NapCat) gives: a bare name in `file`, the CDN link in `url`.
    url = fake.serve("download.jpg", _read(photo), content_type="image/jpeg")
    quoted = Reply(id="42", chain=[Image(file="8F2A1C.jpg", url=url)], message_str="")
    event = make_event("把这张图变成油画", [quoted])
    await astrbot.run_tool(event, image_description="make it an oil painting")

    [sent] = _sent(fake)
    _assert_phone_photo_prepared(sent, photo)
    assert [r.path for r in fake.requests if r.path.startswith("/files/")] == [
        "/files/download.jpg"
    ]


async def test_photos_in_the_message_and_the_quoted_reply_both_arrive_prepared(
    astrbot, fake, plugin_config, photo
):
    url = fake.serve("quoted.jpg", _read(photo), content_type="image/jpeg")
    quoted = Reply(id="43", chain=[Image(file="77AA.jpg", url=url)], message_str="")
    event = make_event("把这两张合成一张", [quoted, Image.fromFileSystem(str(photo))])
    texts = await astrbot.run_tool(event, image_description="blend both photos")

    sent = _sent(fake)
    assert len(sent) == 2
    for part in sent:
        _assert_phone_photo_prepared(part, photo)
    assert "参考了 2 张图片" in texts[0]


def _read(path: Path) -> bytes:
    return path.read_bytes()


async def test_every_source_astrbot_gives_is_read_in_order(astrbot, fake, plugin_config, tmp_path):
    plugin_config["max_reference_images"] = 6
    on_disk = tmp_path / "local.png"
    on_disk.write_bytes(img.solid(BLUE))
    as_uri = tmp_path / "uri.jpg"
    as_uri.write_bytes(img.solid(GREEN, fmt="JPEG"))
    components = [
        Image.fromFileSystem(str(on_disk)),
        Image(file=as_uri.as_uri()),
        Image.fromBase64(img.b64(img.solid(YELLOW))),
        Image(file=data_url(img.solid(PURPLE))),
        Image.fromURL(fake.serve("a.webp", img.solid(ORANGE, fmt="WEBP"))),
        Image(file="0A1B2C.image", url=fake.serve("b.png", img.solid(CYAN))),
    ]
    event = make_event("参考这些图画一张拼贴画", components)
    await astrbot.run_tool(event, image_description="a collage of these")

    sent = _sent(fake)
    assert len(sent) == 6
    for part, color in zip(sent, [BLUE, GREEN, YELLOW, PURPLE, ORANGE, CYAN], strict=True):
        assert part.mime == "image/jpeg"
        assert img.close_to(part.pixel(10, 10), color)


async def test_quoted_images_keep_their_place_in_the_message(astrbot, fake, plugin_config):
    quoted = Reply(id="7", chain=[Image.fromBase64(img.b64(img.solid(GREEN)))])
    event = make_event("把两张图合在一起", [quoted, Image.fromBase64(img.b64(img.solid(BLUE)))])
    await astrbot.run_tool(event, image_description="merge both pictures")

    sent = _sent(fake)
    assert [img.close_to(s.pixel(5, 5), GREEN) for s in sent] == [True, False]
    assert img.close_to(sent[1].pixel(5, 5), BLUE)


async def test_transparency_that_matters_is_kept(astrbot, fake, plugin_config):
    event = make_event(components=[Image.fromBase64(img.b64(img.transparent_png()))])
    await astrbot.run_tool(event, image_description="add a shadow to this sticker")

    [sent] = _sent(fake)
    assert sent.mime == "image/webp" and sent.format == "WEBP"
    assert sent.pixel(5, 5)[3] == 0  # the transparent half
    assert sent.pixel(70, 5)[3] == 255


async def test_an_unused_alpha_channel_gives_a_jpeg(astrbot, fake, plugin_config):
    event = make_event(components=[Image.fromBase64(img.b64(img.transparent_png(used=False)))])
    await astrbot.run_tool(event, image_description="make it brighter")

    [sent] = _sent(fake)
    assert sent.mime == "image/jpeg" and sent.mode == "RGB"


async def test_an_animation_gives_its_first_frame(astrbot, fake, plugin_config):
    gif = img.animated_gif([(200, 20, 20), (20, 200, 20), (20, 20, 200)])
    event = make_event(components=[Image.fromBase64(img.b64(gif))])
    await astrbot.run_tool(event, image_description="redraw this meme")

    [sent] = _sent(fake)
    assert sent.mime == "image/jpeg"
    assert img.close_to(sent.pixel(10, 10), (200, 20, 20))


async def test_small_images_are_not_enlarged(astrbot, fake, plugin_config):
    event = make_event(components=[Image.fromBase64(img.b64(img.solid(BLUE, (300, 200))))])
    await astrbot.run_tool(event, image_description="make it night")
    [sent] = _sent(fake)
    assert sent.size == (300, 200)


async def test_max_side_is_configurable(astrbot, fake, plugin_config):
    plugin_config["reference_image_max_side"] = 512
    event = make_event(components=[Image.fromBase64(img.b64(img.solid(BLUE, (2000, 1000))))])
    await astrbot.run_tool(event, image_description="make it night")
    [sent] = _sent(fake)
    assert sent.size == (512, 256)


async def test_only_the_first_n_images_are_used_and_the_user_is_told(astrbot, fake, plugin_config):
    colors = [BLUE, GREEN, YELLOW, PURPLE, ORANGE, CYAN]
    event = make_event(components=[Image.fromBase64(img.b64(img.solid(c))) for c in colors])
    texts = await astrbot.run_tool(event, image_description="combine them")

    sent = _sent(fake)
    assert len(sent) == 4
    assert img.close_to(sent[3].pixel(5, 5), PURPLE)
    assert "收到 6 张图片，只使用了前 4 张作为参考图" in texts[0]


@pytest.mark.parametrize(
    ("case", "reason_text"),
    [
        ("http_404", "下载失败"),
        ("announced_too_large", "文件太大"),
        ("chunked_too_large", "文件太大"),
        ("slow", "下载超时"),
        ("html_page", "不是有效的图片"),
        ("svg", "不是有效的图片"),
        ("truncated", "不是有效的图片"),
        ("pixel_bomb", "不是有效的图片"),
        ("bad_base64", "不是有效的图片"),
        ("missing_file", "来源无法识别"),
    ],
)
async def test_a_failing_image_is_skipped_logged_and_reported(
    astrbot, fake, plugin_config, tmp_path, case, reason_text
):
    plugin_config["image_download_max_mb"] = 1
    plugin_config["image_download_timeout"] = 0.5
    big = img.noisy_png((700, 700))  # about 1.2 MB
    assert len(big) > 1024 * 1024
    bad = {
        "http_404": lambda: Image.fromURL(fake.file_url("nothing.png")),
        "announced_too_large": lambda: Image.fromURL(fake.serve("big.png", big)),
        "chunked_too_large": lambda: Image.fromURL(fake.serve("big2.png", big, chunked=True)),
        "slow": lambda: Image.fromURL(fake.serve("slow.png", img.solid(BLUE), delay=1.5)),
        "html_page": lambda: Image.fromURL(
            fake.serve("page.png", img.HTML, content_type="image/png")
        ),
        "svg": lambda: Image.fromBase64(img.b64(img.SVG)),
        "truncated": lambda: Image.fromBase64(img.b64(img.solid(BLUE, fmt="JPEG")[:300])),
        "pixel_bomb": lambda: Image.fromBase64(img.b64(img.bomb_png(10_000, 5_000))),
        "bad_base64": lambda: Image(file="base64://not*base64*at*all"),
        "missing_file": lambda: Image.fromFileSystem(str(tmp_path / "gone.jpg")),
    }[case]()
    good = Image.fromBase64(img.b64(img.solid(GREEN)))
    event = make_event("参考这两张图", [good, bad])

    with captured_log() as log:
        texts = await astrbot.run_tool(event, image_description="mix these two")

    sent = _sent(fake)
    assert len(sent) == 1 and img.close_to(sent[0].pixel(5, 5), GREEN)
    assert f"第 2 张参考图{reason_text}，已跳过" in texts[0]
    assert "已生成 1 张图片" in texts[0]
    assert any("reference image 2" in m and "skipped" in m for m in log.at(30))
    assert len(event.sent_images()) == 1


async def test_when_no_reference_image_is_readable_nothing_is_generated(
    astrbot, fake, plugin_config
):
    event = make_event("把这张图改成黑白", [Image.fromBase64(img.b64(img.HTML))])
    texts = await astrbot.run_tool(event, image_description="make it black and white")
    assert fake.chat_requests() == []
    assert "参考图都无法读取" in texts[0]
    assert event.sent == []


@pytest.mark.parametrize("flag", [False, "false", "否"])
async def test_use_reference_images_false_sends_no_image(astrbot, fake, plugin_config, flag):
    event = make_event("画一只猫", [Image.fromBase64(img.b64(img.solid(BLUE)))])
    await astrbot.run_tool(event, image_description="a cat", use_reference_images=flag)
    assert fake.chat_requests()[0].image_parts == []
    assert len(event.sent_images()) == 1


@pytest.mark.parametrize(
    ("message", "prompt"),
    [
        ("把这张图改成黑白的", "make this picture black and white"),
        ("帮我修改一下头像", "improve the avatar"),
        ("给这张照片P成夜景", "night scene"),
        ("@bot 看看", "Edit the attached image: remove the background"),
        ("change this photo to winter", "winter version of this photo"),
    ],
)
async def test_edit_wording_without_an_image_is_drawn_from_the_text(
    astrbot, fake, plugin_config, message, prompt
):
    """The tool never refuses because of wording: the chat model decides what to draw."""
    event = make_event(message)
    texts = await astrbot.run_tool(event, image_description=prompt)
    assert [r.prompt for r in fake.chat_requests()] == [prompt]
    assert len(event.sent_images()) == 1
    assert "已生成 1 张图片" in texts[0] and "没有找到图片" not in texts[0]


async def test_asked_for_references_but_none_found_draws_and_tells_the_model(
    astrbot, fake, plugin_config
):
    event = make_event("把这张图改成黑白", [Reply(id="9", chain=[], message_str="")])
    texts = await astrbot.run_tool(
        event, image_description="black and white", use_reference_images=True
    )
    assert len(fake.chat_requests()) == 1 and fake.chat_requests()[0].image_parts == []
    assert len(event.sent_images()) == 1
    assert "没有找到图片" in texts[0] and "只按文字描述生成" in texts[0]


@pytest.mark.parametrize("command", ["/改图 改成黑白", "/手办化"])
async def test_commands_that_need_a_picture_still_ask_for_one(
    astrbot, fake, plugin_config, command
):
    event = await astrbot.dispatch(make_event(command))
    assert fake.chat_requests() == []
    assert "需要一张图片" in event.sent_text() and "引用" in event.sent_text()


@pytest.mark.parametrize(
    "message",
    [
        "画一只戴帽子的猫",
        "画一张日落时的海边图",
        "画个头像风格的小狗",
        "draw a cat image in watercolor",
    ],
)
async def test_plain_generation_requests_are_not_mistaken_for_edits(
    astrbot, fake, plugin_config, message
):
    event = make_event(message)
    await astrbot.run_tool(event, image_description=message)
    assert len(fake.chat_requests()) == 1
    assert len(event.sent_images()) == 1
