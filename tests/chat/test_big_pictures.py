"""A 4K answer through the real tool and AstrBot's real QQ adapter: what reaches the chat.

The fake NapCat records what AstrBot's adapter posts: the picture inline as base64 (as NapCat
gets it from a local AstrBot), or a receiver path after a push to a remote NapCat host.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from astrbot.core.message.components import File
from PIL import Image

from tests.fakes.napcat import REMOTE_NAPCAT
from tests.fakes.openrouter import Reply, completion, data_url
from tests.support.harness import make_event, make_qq_event
from utils.imaging.store import is_own_image_name

MIB = 1024 * 1024


@pytest.fixture
def answer_4k(fake, photo_4k):
    """The fake answers the next request with the 26 MB 4K picture."""
    fake.enqueue(Reply(raw_body=json.dumps(completion(images=[data_url(photo_4k)])).encode()))
    return photo_4k


def _images(plugin_dir: Path) -> set[Path]:
    return set((plugin_dir / "images").iterdir())


def _picture(data: bytes) -> tuple[str, tuple[int, int]]:
    """(format, size) of a complete, decodable picture."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.format or "", image.size


@pytest.mark.realtime
async def test_a_4k_answer_reaches_qq_under_the_limit_at_full_size(
    astrbot, fake, plugin_config, napcat, answer_4k
):
    before = _images(astrbot.plugin_dir)
    texts = await astrbot.run_tool(make_qq_event(napcat.api_root), image_description="4k cat")

    [uri] = napcat.images_sent()
    sent = base64.b64decode(uri.removeprefix("base64://"))
    assert len(sent) <= 5 * MIB  # the default send_image_max_mb
    assert _picture(sent) == ("JPEG", (4096, 4096))
    assert napcat.files_sent() == []  # send_original_file is off by default
    # The model hears it went out re-encoded; the original stays on disk beside the re-encode.
    assert "已生成 1 张图片" in texts[0] and "已转成 4096×4096 的高质量 JPEG" in texts[0]
    new = _images(astrbot.plugin_dir) - before
    assert len(new) == 2 and all(is_own_image_name(p.name) for p in new)
    [original] = [p for p in new if p.suffix == ".png"]
    assert original.read_bytes() == answer_4k


async def test_a_low_limit_keeps_the_long_side_at_2048_or_more(
    astrbot, fake, plugin_config, napcat, answer_4k
):
    plugin_config["send_image_max_mb"] = 1
    await astrbot.run_tool(make_qq_event(napcat.api_root), image_description="4k cat")
    [uri] = napcat.images_sent()
    sent = base64.b64decode(uri.removeprefix("base64://"))
    assert len(sent) <= 1 * MIB
    assert 2048 <= max(_picture(sent)[1]) < 4096


async def test_a_picture_under_the_limit_goes_out_as_it_is(astrbot, fake, plugin_config, napcat):
    texts = await astrbot.run_tool(make_qq_event(napcat.api_root), image_description="small")
    [uri] = napcat.images_sent()
    assert _picture(base64.b64decode(uri.removeprefix("base64://")))[0] == "PNG"
    assert "JPEG" not in texts[0]


async def test_the_original_also_goes_out_as_a_file_when_asked(
    astrbot, fake, plugin_config, napcat, answer_4k
):
    plugin_config["send_original_file"] = True
    texts = await astrbot.run_tool(make_qq_event(napcat.api_root), image_description="4k cat")

    assert [action for action, _ in napcat.calls] == ["send_group_msg", "send_group_msg"]
    assert len(napcat.images_sent()) == 1
    [file] = napcat.files_sent()
    path = Path(file["file"].removeprefix("file://"))
    assert path.read_bytes() == answer_4k and file["name"] == path.name
    assert "原图也已作为文件发送" in texts[0]


async def test_the_original_is_pushed_to_a_remote_napcat_host_too(
    astrbot, fake, plugin_config, napcat, receiver, answer_4k
):
    plugin_config.update(
        nap_server_address=REMOTE_NAPCAT,
        nap_server_port=receiver.port,
        nap_transfer_token="s3cret-token",
        send_original_file=True,
    )
    await astrbot.run_tool(make_qq_event(napcat.api_root), image_description="4k cat")

    [image_uri] = napcat.images_sent()
    [file] = napcat.files_sent()
    picture = Path(image_uri.removeprefix("file://"))
    original = Path(file["file"].removeprefix("file://"))
    # Both are paths on the NapCat host, as the receiver stored them.
    assert picture.parent == original.parent == Path(receiver.directory)
    assert picture.stat().st_size <= 5 * MIB and original.read_bytes() == answer_4k


async def test_no_file_where_the_platform_takes_none(astrbot, fake, plugin_config, answer_4k):
    plugin_config["send_original_file"] = True
    event = make_event(platform="weixin_official_account")
    texts = await astrbot.run_tool(event, image_description="4k cat")

    [image] = event.sent_images()
    assert Path(image.path).stat().st_size <= 5 * MIB
    assert not any(isinstance(c, File) for chain in event.sent for c in chain.chain)
    assert "原图没能作为文件发送" in texts[0]


async def test_other_platforms_get_the_original_as_a_file_component(
    astrbot, fake, plugin_config, answer_4k
):
    plugin_config["send_original_file"] = True
    event = make_event(platform="telegram")
    await astrbot.run_tool(event, image_description="4k cat")
    files = [c for chain in event.sent for c in chain.chain if isinstance(c, File)]
    assert [Path(f.file).read_bytes() for f in files] == [answer_4k]


async def test_a_command_says_when_the_original_could_not_go_out(
    astrbot, fake, plugin_config, answer_4k
):
    plugin_config["send_original_file"] = True
    event = await astrbot.dispatch(make_event("/画图 a 4k cat", platform="weixin_official_account"))
    replies = ["".join(getattr(c, "text", "") for c in chain.chain) for chain in event.sent]
    assert any("原图没能作为文件发送" in r for r in replies)
    assert len(event.sent_images()) == 1
