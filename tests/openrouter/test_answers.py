"""Every answer shape the service (or a gateway in front of it) sends, and every bad image."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.fakes.openrouter import Reply, completion, data_url, error_body, make_png, png_prompt
from tests.support import images as img
from tests.support.harness import make_event
from tests.support.keys import OUT_OF_CREDITS
from tests.support.logs import captured_log

BAD_IMAGE_TEXT = "模型返回的图片数据已损坏或格式不受支持，请重试。"


def _images_dir(astrbot) -> Path:
    return astrbot.plugin_dir / "images"


def _listing(astrbot) -> set[str]:
    directory = _images_dir(astrbot)
    return {p.name for p in directory.iterdir()} if directory.exists() else set()


def _sent_files(event) -> list[Path]:
    return [Path(i.path) for i in event.sent_images()]


async def test_all_images_of_an_answer_are_delivered(astrbot, fake, plugin_config):
    pictures = [make_png(f"panel {n}") for n in range(3)]
    fake.enqueue(Reply(json_body=completion(images=[data_url(p) for p in pictures])))
    event = make_event("画三格漫画")
    texts = await astrbot.run_tool(event, image_description="a three panel comic")

    files = _sent_files(event)
    assert [png_prompt(f.read_bytes()) for f in files] == ["panel 0", "panel 1", "panel 2"]
    assert all(f.parent == _images_dir(astrbot) and f.suffix == ".png" for f in files)
    assert len(event.sent) == 1  # one message holding every picture
    assert "已生成 3 张图片" in texts[0]


async def test_a_data_url_inside_string_content(astrbot, fake, plugin_config):
    picture = make_png("inline")
    content = f"Here it is:\n![image]({data_url(picture)})\nEnjoy!"
    fake.enqueue(Reply(json_body=completion(content=content)))
    event = make_event()
    texts = await astrbot.run_tool(event, image_description="inline")

    [file] = _sent_files(event)
    assert file.read_bytes() == picture
    assert "Here it is:" in texts[0] and "Enjoy!" in texts[0]
    assert "base64" not in texts[0] and "![" not in texts[0]


async def test_a_data_url_in_list_of_parts_content(astrbot, fake, plugin_config):
    picture = make_png("parts")
    content = [
        {"type": "text", "text": "Done."},
        {"type": "image_url", "image_url": {"url": data_url(picture)}},
    ]
    fake.enqueue(Reply(json_body=completion(content=content)))
    event = make_event()
    texts = await astrbot.run_tool(event, image_description="parts")

    [file] = _sent_files(event)
    assert file.read_bytes() == picture
    assert "模型附言：Done." in texts[0]


async def test_the_same_image_in_images_and_content_is_delivered_once(astrbot, fake, plugin_config):
    url = data_url(make_png("twice"))
    fake.enqueue(Reply(json_body=completion(images=[url], content=f"![x]({url})")))
    event = make_event()
    await astrbot.run_tool(event, image_description="twice")
    assert len(event.sent_images()) == 1


async def test_an_http_image_url_is_downloaded_and_validated(astrbot, fake, plugin_config):
    picture = make_png("remote")
    url = fake.serve("result.png", picture, content_type="image/png")
    fake.enqueue(Reply(json_body=completion(images=[url])))
    event = make_event()
    await astrbot.run_tool(event, image_description="remote")

    [file] = _sent_files(event)
    assert file.read_bytes() == picture and file.suffix == ".png"
    assert "/files/result.png" in [r.path for r in fake.requests]


@pytest.mark.parametrize("case", ["missing", "too_large", "slow", "html"])
async def test_an_http_image_url_that_fails_leaves_nothing_and_says_so(
    astrbot, fake, plugin_config, case
):
    plugin_config["image_download_max_mb"] = 1
    plugin_config["image_download_timeout"] = 0.5
    url = {
        "missing": lambda: fake.file_url("gone.png"),
        "too_large": lambda: fake.serve("big.png", img.noisy_png((700, 700)), chunked=True),
        "slow": lambda: fake.serve("slow.png", make_png("slow"), delay=1.5),
        "html": lambda: fake.serve("page.png", img.HTML, content_type="image/png"),
    }[case]()
    fake.enqueue(Reply(json_body=completion(images=[url])))
    before = _listing(astrbot)
    event = make_event()
    texts = await astrbot.run_tool(event, image_description="remote")

    assert event.sent == []
    assert _listing(astrbot) == before
    expected = BAD_IMAGE_TEXT if case == "html" else "模型返回的图片链接无法下载"
    assert expected in texts[0]


async def test_a_text_only_answer_is_relayed_as_the_reason(astrbot, fake, plugin_config):
    fake.enqueue(Reply(json_body=completion(content="I can only describe it: a red fox.")))
    event = make_event()
    texts = await astrbot.run_tool(event, image_description="a fox")
    assert texts == ["模型没有返回图片，它的回复是：I can only describe it: a red fox."]
    assert event.sent == []


@pytest.mark.parametrize(
    ("finish", "native"),
    [("content_filter", None), ("stop", "IMAGE_SAFETY"), ("stop", "PROHIBITED_CONTENT")],
)
async def test_a_refusal_says_blocked_for_safety(astrbot, fake, plugin_config, finish, native):
    body = completion(content="", finish_reason=finish, native_finish_reason=native)
    fake.enqueue(Reply(json_body=body))
    event = make_event()
    texts = await astrbot.run_tool(event, image_description="something")
    assert texts == ["模型出于安全策略拒绝生成这张图片，请换个说法试试。"]
    assert event.sent == []


async def test_an_error_object_in_a_200_answer_is_classified(astrbot, fake, plugin_config):
    fake.enqueue(Reply(status=200, json_body=error_body(402, "Insufficient credits")))
    event = make_event()
    texts = await astrbot.run_tool(event, image_description="a cat")
    [text] = texts
    assert OUT_OF_CREDITS.fullmatch(text), text
    assert event.sent == []


def _wrapped(text: str) -> str:
    return "\n".join(text[i : i + 76] for i in range(0, len(text), 76))


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda b: _wrapped(base64.b64encode(b).decode()), id="line-wrapped"),
        pytest.param(lambda b: base64.b64encode(b).decode().rstrip("="), id="no-padding"),
        pytest.param(lambda b: base64.urlsafe_b64encode(b).decode(), id="url-safe"),
        pytest.param(lambda b: " " + base64.b64encode(b).decode() + " \r\n", id="spaces"),
    ],
)
async def test_base64_variants_are_decoded(astrbot, fake, plugin_config, encode):
    # A length that needs padding, and bytes whose base64 holds '+' or '/' (or '-' or '_').
    picture = next(p for p in (make_png("variant" + "!" * n) for n in range(3)) if len(p) % 3)
    plain = base64.b64encode(picture).decode()
    assert plain.endswith("=") and ("+" in plain or "/" in plain)
    encoded = encode(picture)
    fake.enqueue(Reply(json_body=completion(images=[f"data:image/png;base64,{encoded}"])))
    event = make_event()
    await astrbot.run_tool(event, image_description="variant")
    [file] = _sent_files(event)
    assert file.read_bytes() == picture


def _bad(kind: str) -> str:
    good = base64.b64encode(make_png("good")).decode()
    shapes = {
        "truncated-base64": lambda: "data:image/png;base64," + good[: len(good) // 2 + 1],
        "cut-mid-quantum": lambda: "data:image/png;base64," + good[: len(good) // 2 - 3],
        "not-base64": lambda: "data:image/png;base64,this is not base64 at all!",
        "html-as-png": lambda: "data:image/png;base64," + img.b64(img.HTML),
        "pixel-bomb": lambda: "data:image/png;base64," + img.b64(img.bomb_png(10_000, 5_000)),
        "huge-bomb": lambda: "data:image/png;base64," + img.b64(img.bomb_png(14_000, 14_000)),
        "svg": lambda: "data:image/svg+xml;base64," + img.b64(img.SVG),
        "svg-labelled-png": lambda: "data:image/png;base64," + img.b64(img.SVG),
        "traversal-label": lambda: "data:image/..\\..\\..\\evil;base64," + img.b64(img.HTML),
        "empty": lambda: "data:image/png;base64,",
        "not-a-data-url": lambda: "image/png;base64," + good,
    }
    return shapes[kind]()


@pytest.mark.parametrize(
    "kind",
    [
        "truncated-base64",
        "cut-mid-quantum",
        "not-base64",
        "html-as-png",
        "pixel-bomb",
        "huge-bomb",
        "svg",
        "svg-labelled-png",
        "traversal-label",
        "empty",
        "not-a-data-url",
    ],
)
async def test_a_bad_image_leaves_no_file_and_tells_the_user(astrbot, fake, plugin_config, kind):
    fake.enqueue(Reply(json_body=completion(images=[_bad(kind)])))
    before = _listing(astrbot)
    plugin_files = {p for p in astrbot.plugin_dir.parent.rglob("*") if p.is_file()}
    event = make_event()
    with captured_log() as log:
        texts = await astrbot.run_tool(event, image_description="a cat")

    assert texts == [BAD_IMAGE_TEXT]
    assert event.sent == []
    assert _listing(astrbot) == before  # neither an image nor a .part temp file
    assert {p for p in astrbot.plugin_dir.parent.rglob("*") if p.is_file()} == plugin_files
    assert any("answer image" in m and "dropped" in m for m in log.at(30))


async def test_a_wrong_label_is_ignored_in_favour_of_the_bytes(astrbot, fake, plugin_config):
    jpeg = img.solid((10, 20, 30), fmt="JPEG")
    png = make_png("labelled")
    fake.enqueue(
        Reply(
            json_body=completion(
                images=[
                    "data:image/png;base64," + img.b64(jpeg),
                    "data:image/../../x;base64," + img.b64(png),
                ]
            )
        )
    )
    event = make_event()
    await astrbot.run_tool(event, image_description="labels")
    files = _sent_files(event)
    assert [f.suffix for f in files] == [".jpg", ".png"]
    assert all(f.parent == _images_dir(astrbot) for f in files)
    assert files[0].read_bytes() == jpeg and files[1].read_bytes() == png


async def test_one_bad_image_among_good_ones_is_dropped_and_mentioned(astrbot, fake, plugin_config):
    good = data_url(make_png("the good one"))
    fake.enqueue(Reply(json_body=completion(images=[good, _bad("svg")])))
    event = make_event()
    texts = await astrbot.run_tool(event, image_description="two")
    [file] = _sent_files(event)
    assert png_prompt(file.read_bytes()) == "the good one"
    assert "已生成 1 张图片" in texts[0] and "另有 1 张返回的图片数据损坏" in texts[0]
