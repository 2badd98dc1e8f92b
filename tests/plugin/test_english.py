"""Every chat in its language, inside the real AstrBot: with `reply_lang` "en" whatever a user
or the chat model receives is English (no CJK character anywhere), every command answers to its
English name through AstrBot's own pipeline, and "auto" answers each message in its language.

Chinese stays the default: the rest of the suite pins the Chinese texts.
"""

from __future__ import annotations

import itertools
import re

import pytest
from astrbot.core.provider.register import llm_tools

from tests.fakes.openrouter import Reply, png_prompt
from tests.support.harness import ADMIN_ID, TOOL_NAME, image_path, make_event
from tests.support.language import CJK, cjk_in
from utils.chat.texts import command_names

_IDS = itertools.count(1)


def fresh_user() -> str:
    """A user id no other test draws with (the spend ledger is shared by the session)."""
    return f"en-user-{next(_IDS):03d}"


def tool_function() -> dict:
    """The tool as AstrBot hands it to the chat model (OpenAI style)."""
    schemas = llm_tools.get_full_tool_set().openai_schema()
    [function] = [s["function"] for s in schemas if s["function"]["name"] == TOOL_NAME]
    return function


def tool_texts(function: dict) -> list[str]:
    properties = function["parameters"]["properties"]
    return [function["description"], *(p["description"] for p in properties.values())]


def received(astrbot, event, *tool_results: str) -> list[str]:
    """Everything the user and the chat model received: messages through the event, messages
    sent later through AstrBot's context, and the tool's results."""
    later = [
        c.text for _, chain in astrbot.platform.sent for c in chain.chain if hasattr(c, "text")
    ]
    return [*event.sent_texts(), *later, *tool_results]


# --- the chat model's side ----------------------------------------------------------------------


async def test_the_tool_is_described_in_english(astrbot, english):
    function = tool_function()
    assert cjk_in(*tool_texts(function)) == []
    assert function["description"].startswith("Makes a picture from a text description")
    properties = function["parameters"]["properties"]
    # Same arguments and types as the Chinese description; only the words change.
    assert properties["image_description"]["type"] == "string"
    assert properties["use_sender_avatar"]["type"] == "boolean"
    assert "@-mentioned" in properties["use_reference_images"]["description"]
    assert "my avatar" in properties["use_sender_avatar"]["description"]
    continuing = properties["continue_last_picture"]["description"]
    assert "make it night" in continuing and "leave it out for a new drawing" in continuing


async def test_the_tool_is_described_in_chinese_by_default(astrbot, plugin_config):
    function = tool_function()
    assert function["description"].startswith("使用 Gemini 图像模型根据文字描述生成图片")
    assert all(CJK.search(text) for text in tool_texts(function))


async def test_auto_describes_the_tool_in_both_languages_chinese_first(astrbot, auto_lang):
    for text in tool_texts(tool_function()):
        chinese, english = text.split("\n")
        assert CJK.search(chinese) and not CJK.search(english) and re.search("[a-z]", english)


# --- a conversation in English ------------------------------------------------------------------


async def test_a_drawing_is_told_in_english(astrbot, fake, english):
    english["progress_message"] = True
    event = make_event("draw a cat on the moon", sender_id=fresh_user())

    results = await astrbot.run_tool(event, image_description="a cat on the moon")

    [image] = event.sent_images()
    assert png_prompt(image_path(image).read_bytes()) == "a cat on the moon"
    assert event.sent_texts() == ["🎨 Got it, making your picture, one moment…"]
    # The fake image model says "Here you go." beside the picture.
    assert results == [
        "Made 1 picture and sent it to the user. The image model added: Here you go."
    ]
    assert cjk_in(*received(astrbot, event, *results)) == []


async def test_a_missing_key_is_told_in_english(astrbot, fake, english):
    english["openrouter_api_keys"] = []
    event = make_event("draw a cat")

    results = await astrbot.run_tool(event, image_description="a cat")

    assert results == [
        "The image plugin has no usable OpenRouter API key yet; an admin needs to add one in "
        "the plugin settings."
    ]
    assert fake.requests == []
    assert cjk_in(*received(astrbot, event, *results)) == []


async def test_a_rate_limit_is_told_in_english(astrbot, fake, english):
    """OpenRouter answers 429 and asks for two minutes: the user hears when to come back."""
    fake.default = lambda _r: Reply.error(
        429, "Rate limit exceeded", headers={"Retry-After": "120"}
    )
    event = make_event("draw a cat")

    [result] = await astrbot.run_tool(event, image_description="a cat")

    assert result.startswith("Too many requests: the API key is cooling down after a rate limit.")
    assert re.search(r"Please try again at \d\d:\d\d:\d\d \(in about 1[12]\d s\)\.$", result)
    assert len(fake.chat_requests()) == 1
    assert cjk_in(*received(astrbot, event, result)) == []


async def test_a_daily_cap_refusal_is_told_in_english(astrbot, fake, english):
    english["user_daily_limit"] = 1
    user = fresh_user()
    first = await astrbot.dispatch(make_event("/draw a red fox", sender_id=user))
    assert len(first.sent_images()) == 1

    second = await astrbot.dispatch(make_event("/draw a blue fox", sender_id=user))

    [reply] = second.sent_texts()
    assert re.fullmatch(
        r"Daily limit reached: your pictures \(at most 1 per person a day\)\. "
        r"It resets at \d\d-\d\d 00:00; please come back tomorrow\.",
        reply,
    )
    assert second.sent_images() == []
    assert [r.prompt for r in fake.chat_requests()] == ["a red fox"]
    assert cjk_in(*received(astrbot, first), *received(astrbot, second)) == []


async def test_an_upstream_failure_through_a_command_is_told_in_english(astrbot, fake, english):
    fake.enqueue(Reply.error(402, "Insufficient credits"))
    event = await astrbot.dispatch(make_event("/draw a cat"))
    [reply] = event.sent_texts()
    assert re.fullmatch(
        r"The OpenRouter account is out of credits; an admin needs to top it up or change the "
        r"key\. Once topped up, try again at \d\d:\d\d:\d\d \(in about 60 seconds\)\.",
        reply,
    )
    assert event.sent_images() == []


# --- English command names ---------------------------------------------------------------------

# Each English name, what to send after it, and words its English answer starts with.
ENGLISH_COMMANDS = [
    ("draw", "", "Usage: /draw <description>"),
    ("edit", " make it blue", "This command needs a picture, but I didn't get one."),
    ("figure", "", "This command needs a picture, but I didn't get one."),
    ("draw_help", "", "🎨 Gemini drawing commands"),
    ("draw_model", "", "Current image model: google/gemini-2.5-flash-image"),
    ("draw_api", "", "Current API address: http://127.0.0.1:"),
    ("draw_config", "", "Current settings of the drawing plugin:"),
    ("draw_keys", "", "OpenRouter key pool (1 key, model google/gemini-2.5-flash-image):"),
    ("gemini_keys", "", "OpenRouter key pool (1 key, model google/gemini-2.5-flash-image):"),
    ("draw_stats", "", "📊 Drawing statistics ("),
]


def test_every_command_has_an_english_name_here():
    tested = {name for name, _, _ in ENGLISH_COMMANDS}
    assert tested == {name for c in command_names.ALL for name in c.names if name.isascii()}


@pytest.mark.parametrize(("name", "argument", "answer"), ENGLISH_COMMANDS, ids=lambda v: v)
async def test_each_english_name_runs_its_command(
    astrbot, fake, english, admin, name, argument, answer
):
    event = await astrbot.dispatch(make_event(f"/{name}{argument}", sender_id=ADMIN_ID))
    [reply] = event.sent_texts()
    assert reply.startswith(answer)
    assert cjk_in(reply) == []
    assert fake.chat_requests() == []


async def test_draw_strips_its_english_name_from_the_description(astrbot, fake, plugin_config):
    """The English name works whatever the reply language; the description is what follows."""
    event = await astrbot.dispatch(make_event("/draw a red fox\nin the snow"))
    [request] = fake.chat_requests()
    assert request.prompt == "a red fox\nin the snow"
    assert len(event.sent_images()) == 1


async def test_figure_me_uses_the_senders_own_avatar(astrbot, fake, english):
    """ "me" alone asks for one's own avatar; there is none outside QQ, and the answer says so."""
    event = await astrbot.dispatch(make_event("/figure me", platform="telegram"))
    [reply] = event.sent_texts()
    assert reply.startswith("No avatar was used as a reference: this platform gives no avatars")
    assert fake.chat_requests() == []


# --- help -----------------------------------------------------------------------------------------


async def test_the_english_help_lists_the_english_commands(astrbot, fake, english):
    event = await astrbot.dispatch(make_event("/draw_help"))
    [text] = event.sent_texts()
    for command in command_names.ALL:
        assert f"/{command.en}" in text
    assert cjk_in(text) == []
    # /画图帮助 answers the same when the language is English.
    chinese_name = await astrbot.dispatch(make_event("/画图帮助"))
    assert chinese_name.sent_texts() == [text]


async def test_the_chinese_help_names_the_english_commands(astrbot, fake, plugin_config):
    event = await astrbot.dispatch(make_event("/画图帮助"))
    [text] = event.sent_texts()
    last = text.splitlines()[-1] if "提示" not in text.splitlines()[-1] else text.splitlines()[-2]
    assert last.startswith("英文指令名（作用相同）：")
    for command in command_names.ALL:
        assert f"/{command.zh}" in text and f"/{command.en}" in last


# --- auto ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "platform", "chinese"),
    [
        ("画一只猫", "aiocqhttp", True),
        ("draw a cat", "aiocqhttp", False),
        ("draw a cat 猫", "telegram", True),  # Han wins
        ("🐱🎨", "aiocqhttp", True),  # neither: QQ reads Chinese
        ("🐱🎨", "telegram", False),  # neither: Telegram reads English
    ],
)
async def test_auto_answers_the_tool_call_in_the_messages_language(
    astrbot, fake, auto_lang, message, platform, chinese
):
    auto_lang["progress_message"] = True
    event = make_event(message, platform=platform, sender_id=fresh_user())
    [result] = await astrbot.run_tool(event, image_description="a cat")
    [progress] = event.sent_texts()
    if chinese:
        assert result.startswith("已生成 1 张图片并发送给用户。")
        assert progress.startswith("🎨 收到，正在生成图片")
    else:
        assert result.startswith("Made 1 picture and sent it to the user.")
        assert progress.startswith("🎨 Got it, making your picture")


async def test_auto_answers_each_command_in_its_language(astrbot, fake, auto_lang):
    english = await astrbot.dispatch(make_event("/draw_help"))
    chinese = await astrbot.dispatch(make_event("/画图帮助"))
    [english_help], [chinese_help] = english.sent_texts(), chinese.sent_texts()
    assert english_help.startswith("🎨 Gemini drawing commands") and not CJK.search(english_help)
    assert chinese_help.startswith("🎨 Gemini 画图指令")
    # A Chinese description under the English name is a Chinese speaker's.
    usage = await astrbot.dispatch(make_event("/edit 换成蓝色"))
    assert usage.sent_texts()[0].startswith("这个指令需要一张图片")
