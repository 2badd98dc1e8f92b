"""Delivery through AstrBot's real QQ event: local files, a push to the NapCat host, file service."""

from __future__ import annotations

import base64
import socket
from pathlib import Path

import pytest

from tests.fakes.napcat import REMOTE_NAPCAT
from tests.fakes.openrouter import Reply, completion, data_url, png_prompt
from tests.support.harness import image_path, make_event, make_qq_event
from tests.support.images import undecodable_png


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((REMOTE_NAPCAT, 0))
        return sock.getsockname()[1]


def _local_images(plugin_dir: Path) -> set[Path]:
    return set((plugin_dir / "images").glob("gemini_image_*"))


async def test_remote_napcat_gets_the_receivers_path(
    astrbot, fake, plugin_config, napcat, receiver
):
    plugin_config.update(
        nap_server_address=REMOTE_NAPCAT,
        nap_server_port=receiver.port,
        nap_transfer_token="s3cret-token",
    )
    before = _local_images(astrbot.plugin_dir)
    event = make_qq_event(napcat.api_root, "画一只猫")
    texts = await astrbot.run_tool(event, image_description="a pushed cat")

    assert "已生成 1 张图片" in texts[0]
    [(action, params)] = napcat.calls
    assert action == "send_group_msg" and params["group_id"] == 20002
    [uri] = napcat.images_sent()
    remote = Path(uri.removeprefix("file://"))
    assert remote.parent == Path(receiver.directory)
    [local] = _local_images(astrbot.plugin_dir) - before
    assert remote.read_bytes() == local.read_bytes()
    assert png_prompt(remote.read_bytes()) == "a pushed cat"


async def test_unreachable_receiver_falls_back_to_inline_and_names_it_in_the_log_only(
    astrbot, fake, plugin_config, napcat, plugin_log
):
    port = _free_port()
    plugin_config.update(nap_server_address=REMOTE_NAPCAT, nap_server_port=port)
    event = make_qq_event(napcat.api_root)
    texts = await astrbot.run_tool(event, image_description="a fallback cat")

    # The model may repeat its text in a group chat: the address is for admins, in the log.
    assert "接收端" in texts[0] and REMOTE_NAPCAT not in texts[0] and str(port) not in texts[0]
    [uri] = napcat.images_sent()
    # AstrBot's adapter inlined the local file: NapCat never sees a path it cannot read.
    assert uri.startswith("base64://")
    assert png_prompt(base64.b64decode(uri.removeprefix("base64://"))) == "a fallback cat"
    assert any(f"{REMOTE_NAPCAT}:{port}" in r.getMessage() for r in plugin_log)


async def test_a_command_in_a_group_names_no_host_either(
    astrbot, fake, plugin_config, napcat, plugin_log
):
    port = _free_port()
    plugin_config.update(nap_server_address=REMOTE_NAPCAT, nap_server_port=port)
    await astrbot.dispatch(make_qq_event(napcat.api_root, "/画图 一只猫"))

    said = [
        segment["data"]["text"]
        for params in napcat.actions("send_group_msg")
        for segment in params["message"]
        if segment["type"] == "text"
    ]
    assert any("接收端" in text for text in said)
    assert not any(REMOTE_NAPCAT in text or str(port) in text for text in said)
    assert any(f"{REMOTE_NAPCAT}:{port}" in r.getMessage() for r in plugin_log)


async def test_wrong_token_is_refused_and_falls_back(
    astrbot, fake, plugin_config, napcat, receiver
):
    plugin_config.update(
        nap_server_address=REMOTE_NAPCAT, nap_server_port=receiver.port, nap_transfer_token="nope"
    )
    event = make_qq_event(napcat.api_root)
    texts = await astrbot.run_tool(event, image_description="a cat")
    assert "接收端" in texts[0]
    assert napcat.images_sent()[0].startswith("base64://")
    assert not any(Path(receiver.directory).iterdir())


@pytest.mark.parametrize("address", ["localhost", "127.0.0.1", ""])
async def test_local_napcat_sends_the_local_file(astrbot, fake, plugin_config, napcat, address):
    plugin_config["nap_server_address"] = address
    event = make_qq_event(napcat.api_root)
    texts = await astrbot.run_tool(event, image_description="a local cat")
    assert texts[0].startswith("已生成 1 张图片并发送给用户。")
    [uri] = napcat.images_sent()
    assert png_prompt(base64.b64decode(uri.removeprefix("base64://"))) == "a local cat"


async def test_other_platforms_never_push(astrbot, fake, plugin_config, receiver):
    plugin_config.update(nap_server_address=REMOTE_NAPCAT, nap_server_port=receiver.port)
    event = make_event(platform="telegram")
    await astrbot.run_tool(event, image_description="a cat")
    [image] = event.sent_images()
    assert Path(image.path).parent == astrbot.plugin_dir / "images"
    assert not any(Path(receiver.directory).iterdir())


async def test_file_service_links_when_callback_base_is_set(astrbot, fake, plugin_config):
    plugin_config["use_file_service"] = True
    global_config = astrbot.context.get_config()
    saved = global_config.get("callback_api_base", "")
    global_config["callback_api_base"] = "http://bot.example:6185"
    try:
        event = make_event()
        await astrbot.run_tool(event, image_description="a cat")
    finally:
        global_config["callback_api_base"] = saved
    [image] = event.sent_images()
    assert image.file.startswith("http://bot.example:6185/api/file/")


async def test_file_service_without_callback_base_sends_the_file(astrbot, fake, plugin_config):
    plugin_config["use_file_service"] = True
    event = make_event()
    await astrbot.run_tool(event, image_description="a cat")
    [image] = event.sent_images()
    assert image.file.startswith("file://")


# --- paid, then something fails on the way to the chat ---------------------------------------------


@pytest.fixture
def undecodable_answer(fake, plugin_config):
    """The fake answers with a 3 MB PNG Pillow cannot decode (its chunks are intact, so the
    store accepts it and the answer is paid for); the send limit makes delivery re-encode it."""
    png = undecodable_png()
    fake.enqueue(Reply(json_body=completion(images=[data_url(png)])))
    plugin_config["send_image_max_mb"] = 1
    return png


async def test_a_reencode_that_fails_after_a_paid_answer_sends_the_original(
    astrbot, fake, undecodable_answer, plugin_log
):
    event = make_event()
    texts = await astrbot.run_tool(event, image_description="a noisy cat")

    [image] = event.sent_images()
    assert image_path(image).read_bytes() == undecodable_answer  # the original, as it came
    assert "已生成 1 张图片" in texts[0] and "图片压缩失败，已改为发送原图" in texts[0]
    assert "JPEG" not in texts[0]
    assert any("sending the original" in m for m in _warnings(plugin_log))


async def test_when_the_original_cannot_be_sent_either_the_model_hears_made_but_not_sent(
    astrbot, fake, undecodable_answer, plugin_log
):
    event = make_event()
    event.send_error = RuntimeError("adapter down")
    texts = await astrbot.run_tool(event, image_description="a noisy cat")

    assert "图片已经生成，但发送到聊天失败" in texts[0]
    assert "请不要再次调用画图工具" in texts[0]  # the undelivered flag: paid, do not draw again
    assert len(fake.chat_requests()) == 1
    assert any("made, not sent" in m for m in _errors(plugin_log))


def _warnings(records) -> list[str]:
    return [r.getMessage() for r in records if r.levelname == "WARNING"]


def _errors(records) -> list[str]:
    return [r.getMessage() for r in records if r.levelname == "ERROR"]
