"""Conversations, not one-shots: "change the picture you just made" (issue 18), through the
plugin in a real AstrBot and the fake OpenRouter.

A picture delivered in a conversation is remembered; the tool's `continue_last_picture` and
/改图 or /手办化 without a picture go on from it: as the first reference (what reaches the
fake is the delivered picture, prepared as every reference is), or, for a Gemini 3 image
model, as the previous turn sent back as history with the reasoning details it returned.
Nothing is offered to another conversation; the memory outlives a reload and a restart and
ends with the retention time, files and all.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest
from astrbot.core.message.components import Image

from tests.fakes.openrouter import (
    IMAGE_MODELS,
    Reply,
    completion,
    data_url,
    png_prompt,
    reasoning_details_for,
)
from tests.fakes.openrouter_images import SEEDREAM
from tests.support.harness import image_path, make_event, memory_on_disk
from utils.chat.jobs import FIGURE_TEMPLATE
from utils.imaging.references import ReferenceOptions, prepare_image

GEMINI_3 = IMAGE_MODELS[1]  # google/gemini-3-pro-image-preview
CONTINUED = "已在这个对话上一次生成的 1 张图片上继续修改"
NOTHING_REMEMBERED = "这个对话里没有记住的上一张图"
NO_PICTURE = "这个指令需要一张图片，但我没有收到图片"


def delivered(event) -> Path:
    """The picture a request sent to the chat (the last one)."""
    return image_path(event.sent_images()[-1])


def as_reference(path: Path) -> str:
    """A delivered picture as every reference goes out: shrunk to the configured longest side
    (2048 px) and re-encoded (utils/imaging/references.prepare_image)."""
    options = ReferenceOptions(max_images=4, max_side=2048, max_bytes=20 << 20, timeout=15)
    return prepare_image(path.read_bytes(), options).data_url


def decoded(url: str) -> bytes:
    return base64.b64decode(url.partition(",")[2])


async def draw(astrbot, prompt: str = "a red apple", **event_args) -> Path:
    event = make_event("画一个红苹果", **event_args)
    [text] = await astrbot.run_tool(event, image_description=prompt)
    assert "已生成 1 张图片" in text, text
    return delivered(event)


# --- the tool ---------------------------------------------------------------------------------


async def test_the_tool_goes_on_from_the_picture_it_just_delivered(astrbot, fake, plugin_config):
    apple = await draw(astrbot)
    event = make_event("把刚才那张图改成夜景")
    [text] = await astrbot.run_tool(
        event, image_description="make it night", continue_last_picture=True
    )
    _, request = fake.chat_requests()
    assert request.prompt == "make it night"
    assert request.image_parts == [as_reference(apple)]
    assert request.history == []  # Gemini 2.5 keeps no turns: a plain reference
    assert CONTINUED in text and "作为参考图" in text
    assert png_prompt(delivered(event).read_bytes()) == "make it night"


async def test_a_new_drawing_in_the_same_chat_drags_nothing_in(astrbot, fake, plugin_config):
    await draw(astrbot)
    [text] = await astrbot.run_tool(make_event("画一只狗"), image_description="a dog")
    _, request = fake.chat_requests()
    assert request.image_parts == [] and request.history == []
    assert "继续修改" not in text


@pytest.mark.parametrize("continued", ["true", True], ids=["as text", "boolean"])
async def test_the_last_picture_comes_ahead_of_the_message_pictures(
    astrbot, fake, plugin_config, picture, continued
):
    apple = await draw(astrbot)
    event = make_event("把它和这张放在一起", [Image.fromFileSystem(str(picture))])
    await astrbot.run_tool(
        event, image_description="put them side by side", continue_last_picture=continued
    )
    request = fake.chat_requests()[-1]
    assert request.image_parts == [as_reference(apple), as_reference(picture)]


async def test_within_max_reference_images_the_last_picture_goes_first(
    astrbot, fake, plugin_config, picture
):
    plugin_config["max_reference_images"] = 1
    apple = await draw(astrbot)
    event = make_event("把它和这张放在一起", [Image.fromFileSystem(str(picture))])
    [text] = await astrbot.run_tool(
        event, image_description="put them side by side", continue_last_picture=True
    )
    assert fake.chat_requests()[-1].image_parts == [as_reference(apple)]
    assert "只使用了前 1 张" in text  # the message's picture was over the limit, and it says so


async def test_nothing_remembered_draws_from_the_text_and_says_so(astrbot, fake, plugin_config):
    [text] = await astrbot.run_tool(
        make_event("把刚才那张改成夜景"),
        image_description="make it night",
        continue_last_picture=True,
    )
    [request] = fake.chat_requests()
    assert request.image_parts == [] and request.history == []
    assert "已生成 1 张图片" in text and NOTHING_REMEMBERED in text


# --- the commands -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "prompt"),
    [("/改图 make it night", "make it night"), ("/手办化", FIGURE_TEMPLATE.format(details=""))],
    ids=["edit", "figure"],
)
async def test_a_command_without_a_picture_uses_the_last_one_and_says_so(
    astrbot, fake, plugin_config, command, prompt
):
    first = await astrbot.dispatch(make_event("/画图 a red apple"))
    apple = delivered(first)
    event = await astrbot.dispatch(make_event(command))
    _, request = fake.chat_requests()
    assert request.prompt == prompt.strip()
    assert request.image_parts == [as_reference(apple)]
    assert event.sent_texts() == ["已在这个对话上一次生成的 1 张图片上继续修改（作为参考图）。"]
    assert len(event.sent_images()) == 1


async def test_a_command_with_a_picture_uses_that_picture(astrbot, fake, plugin_config, picture):
    await draw(astrbot)
    event = await astrbot.dispatch(
        make_event("/改图 make it night", [Image.fromFileSystem(str(picture))])
    )
    assert fake.chat_requests()[-1].image_parts == [as_reference(picture)]
    assert event.sent_texts() == []  # a plain edit: nothing to remark


async def test_a_command_with_nothing_remembered_gives_the_one_sentence(
    astrbot, fake, plugin_config
):
    event = await astrbot.dispatch(make_event("/改图 make it night"))
    [text] = event.sent_texts()
    assert text.startswith(NO_PICTURE) and "保留时间" in text
    assert fake.generation_requests() == []


# --- whose picture ------------------------------------------------------------------------------

OTHERS = {
    "another group": {"group_id": "30003"},
    "another user in the group": {"sender_id": "10002"},
    "the same user's private chat": {"group_id": None},
    "another bot on the same platform": {"platform_id": "qq-2"},
}


@pytest.mark.parametrize("other", OTHERS.values(), ids=OTHERS.keys())
async def test_a_picture_is_never_offered_to_another_conversation(
    astrbot, fake, plugin_config, other
):
    apple = await draw(astrbot)  # user 10001 in group 20002 on platform "test"

    event = await astrbot.dispatch(make_event("/改图 make it night", **other))
    [text] = event.sent_texts()
    assert text.startswith(NO_PICTURE)
    [text] = await astrbot.run_tool(
        make_event("把刚才那张改成夜景", **other),
        image_description="make it night",
        continue_last_picture=True,
    )
    assert NOTHING_REMEMBERED in text
    assert fake.chat_requests()[-1].image_parts == []
    # The one who drew it still can.
    await astrbot.dispatch(make_event("/改图 make it night"))
    assert fake.chat_requests()[-1].image_parts == [as_reference(apple)]


async def test_each_conversation_goes_on_from_its_own_last_picture(astrbot, fake, plugin_config):
    alice = await draw(astrbot, "alice's apple")
    bob = await draw(astrbot, "bob's pear", sender_id="10002")
    await astrbot.dispatch(make_event("/改图 make it night"))
    await astrbot.dispatch(make_event("/改图 make it night", sender_id="10002"))
    assert [r.image_parts for r in fake.chat_requests()[2:]] == [
        [as_reference(alice)],
        [as_reference(bob)],
    ]


# --- kept across a reload and a restart; gone with the retention time -------------------------


async def test_the_memory_outlives_a_reload(astrbot, fake, plugin_config):
    apple = await draw(astrbot)
    reloaded = await astrbot.reload()  # what a config save in the panel does
    reloaded.config.update(plugin_config)
    await astrbot.dispatch(make_event("/改图 make it night"))
    assert fake.chat_requests()[-1].image_parts == [as_reference(apple)]


async def test_the_memory_outlives_a_restart(astrbot, fake, plugin_config):
    apple = await draw(astrbot)
    settings = dict(plugin_config)
    await astrbot.restart(**settings)  # terminate(), then initialize(): a new pipeline
    night = await astrbot.dispatch(make_event("/改图 make it night"))
    assert fake.chat_requests()[-1].image_parts == [as_reference(apple)]
    # A new object of the plugin's class (a new process would make one) reads it too, and
    # goes on from the newest picture.
    async with astrbot.instance() as fresh:
        await fresh.cmd_edit(make_event("/改图 make it blue"))
        assert fake.chat_requests()[-1].image_parts == [as_reference(delivered(night))]


async def test_after_the_retention_time_the_sentence_and_the_files_are_gone(
    astrbot, fake, plugin_config, virtual_time
):
    plugin_config["image_retention_minutes"] = 15
    event = make_event("画一个红苹果")
    await virtual_time.run_tool(event, image_description="a red apple")
    apple = delivered(event)
    cleanup = virtual_time.plugin.pipeline.cleanup

    virtual_time.advance(14 * 60)
    await cleanup.run_once()
    assert apple.exists()  # remembered, and within the retention time anyway
    virtual_time.advance(60)
    await cleanup.run_once()
    assert not apple.exists()

    event = make_event("/改图 make it night")
    await virtual_time.plugin.cmd_edit(event)
    [text] = event.sent_texts()
    assert text.startswith(NO_PICTURE)
    assert len(fake.generation_requests()) == 1
    on_disk = await memory_on_disk(virtual_time.plugin)
    assert on_disk["conversations"] == {}


# --- Gemini 3: the previous turn as history ------------------------------------------------------


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed", "plain JSON"])
async def test_a_gemini_3_model_gets_the_previous_turn_as_history(
    astrbot, fake, plugin_config, streamed
):
    plugin_config["model_name"] = GEMINI_3
    if not streamed:  # a gateway that answers plain JSON
        fake.default = lambda r: Reply(json_body=fake.success_for(r).json_body, stream=False)
    apple = await draw(astrbot)
    event = make_event("把它改成夜景")
    [text] = await astrbot.run_tool(
        event, image_description="make it night", continue_last_picture=True
    )
    first, request = fake.chat_requests()
    assert first.history == [] and first.streamed
    assert request.history == [
        {"role": "user", "content": [{"type": "text", "text": "a red apple"}]},
        {
            "role": "assistant",
            "content": "Here you go.",
            "images": [{"type": "image_url", "image_url": {"url": data_url(apple.read_bytes())}}],
            "reasoning_details": reasoning_details_for("a red apple"),
        },
    ]
    assert decoded(request.history[1]["images"][0]["image_url"]["url"]) == apple.read_bytes()
    assert request.prompt == "make it night" and request.image_parts == []
    assert "连同上一轮对话一起发给模型" in text
    # What the turn adds to the request: the picture as it was delivered, and the details.
    assert request.size - len(json.dumps(request.history[1]["images"])) < 4096


async def test_history_only_for_the_model_that_made_the_turn(astrbot, fake, plugin_config):
    apple = await draw(astrbot)  # Gemini 2.5: no reasoning details
    plugin_config["model_name"] = GEMINI_3
    await astrbot.dispatch(make_event("/改图 make it night"))
    request = fake.chat_requests()[-1]
    assert request.history == [] and request.image_parts == [as_reference(apple)]


async def test_a_model_on_the_image_api_gets_a_plain_reference(astrbot, fake, plugin_config):
    plugin_config["model_name"] = SEEDREAM
    first = await astrbot.dispatch(make_event("/画图 a red apple"))
    apple = delivered(first)
    await astrbot.dispatch(make_event("/改图 make it night"))
    [_, request] = fake.image_requests()
    assert request.image_parts == [as_reference(apple)]


async def test_a_gemini_3_turn_goes_on_and_on(astrbot, fake, plugin_config):
    """Each continued edit is remembered in its turn: the next one goes on from it."""
    plugin_config["model_name"] = GEMINI_3
    await draw(astrbot)
    night = make_event()
    await astrbot.run_tool(night, image_description="make it night", continue_last_picture=True)
    await astrbot.run_tool(make_event(), image_description="add a cat", continue_last_picture=True)
    request = fake.chat_requests()[-1]
    user, assistant = request.history  # one previous turn, never more
    assert user["content"][0]["text"] == "make it night"
    assert decoded(assistant["images"][0]["image_url"]["url"]) == delivered(night).read_bytes()
    assert assistant["reasoning_details"] == reasoning_details_for("make it night")


async def test_a_4k_turn_goes_back_as_it_was_delivered(astrbot, fake, plugin_config, photo_4k):
    """A 4K picture is delivered as a JPEG under send_image_max_mb (5 MB); that JPEG, not the
    26 MB original, is what the history carries."""
    plugin_config["model_name"] = GEMINI_3
    body = completion(
        images=[data_url(photo_4k)],
        content="Here you go.",
        model=GEMINI_3,
        reasoning_details=reasoning_details_for("a 4K mountain"),
    )
    fake.enqueue(Reply(json_body=body))
    event = make_event()
    await astrbot.run_tool(event, image_description="a 4K mountain", image_size="4K")
    sent = delivered(event)
    assert sent.suffix == ".jpg" and sent.stat().st_size <= 5 * 1024 * 1024

    await astrbot.run_tool(make_event(), image_description="snow", continue_last_picture=True)
    request = fake.chat_requests()[-1]
    url = request.history[1]["images"][0]["image_url"]["url"]
    assert decoded(url) == sent.read_bytes()
    assert request.size < len(url) + 8192  # the turn is the picture, and little else


# --- two requests of one chat at once -----------------------------------------------------------


async def test_two_requests_of_one_chat_at_once_are_both_remembered(astrbot, fake, plugin_config):
    fake.default = lambda r: Reply(json_body=fake.success_for(r).json_body, delay=0.05)
    events = [make_event(), make_event()]
    await asyncio.gather(
        *(astrbot.run_tool(e, image_description=f"picture {i}") for i, e in enumerate(events))
    )
    memory = astrbot.plugin.pipeline.shared.memory
    [turns] = memory.snapshot().values()
    assert sorted(t.prompt for t in turns) == ["picture 0", "picture 1"]
    on_disk = await memory_on_disk(astrbot.plugin)
    assert [t["prompt"] for t in next(iter(on_disk["conversations"].values()))] == [
        t.prompt for t in turns
    ]
    await astrbot.dispatch(make_event("/改图 make it night"))
    newest = astrbot.plugin.pipeline.shared.store.directory / turns[-1].files[0]
    assert fake.chat_requests()[-1].image_parts == [as_reference(newest)]
