"""Choosing a chat's language (`reply_lang`: zh, en, auto) and the pair primitives."""

from __future__ import annotations

import pytest
from astrbot.core.message.components import At, Image, Reply

from tests.support.harness import make_event
from utils.chat.texts.language import (
    EN,
    ZH,
    Words,
    chat_lang,
    choose_lang,
    lang_of_text,
    listing,
    say,
    sentences,
)
from utils.core.settings import Settings


def test_a_pair_gives_the_side_of_the_language():
    assert say(ZH, zh="你好", en="hello") == "你好"
    assert say(EN, zh="你好", en="hello") == "hello"
    words = Words("你好", "hello")
    assert (words(ZH), words(EN)) == ("你好", "hello")
    assert listing(ZH, ["a", "b"]) == "a、b" and listing(EN, ["a", "b"]) == "a, b"
    assert sentences(ZH, ["一。", "", "二。"]) == "一。二。"
    assert sentences(EN, ["One.", "", "Two."]) == "One. Two."


def test_both_sides_are_required():
    with pytest.raises(TypeError):
        say(ZH, zh="只有中文")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Words("只有中文")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("text", "platform", "expected"),
    [
        ("画一只猫", "telegram", ZH),  # Han characters: Chinese wherever
        ("draw a cat 猫", "discord", ZH),  # Han and Latin: Chinese
        ("draw a cat", "aiocqhttp", EN),  # Latin only: English, even on QQ
        ("dessine un château", "webchat", EN),  # Latin with accents
        ("🐱", "aiocqhttp", ZH),  # neither: the platform decides
        ("", "wecom", ZH),
        ("", "lark", ZH),
        ("123 !!", "webchat", ZH),
        ("🐱", "telegram", EN),
        ("", "discord", EN),
        ("", "slack", EN),
        ("", "line", EN),
        ("", "some_new_platform", EN),
    ],
)
def test_the_auto_rule(text, platform, expected):
    assert lang_of_text(text, platform) is expected


def test_the_setting_decides_unless_it_is_auto():
    assert choose_lang("zh", "draw a cat", "telegram") is ZH
    assert choose_lang("en", "画一只猫", "aiocqhttp") is EN
    assert choose_lang("auto", "draw a cat", "aiocqhttp") is EN


def test_settings_read_reply_lang_and_default_to_chinese():
    assert Settings.from_config({}).reply_lang == "zh"
    assert Settings.from_config({"translation": {"reply_lang": "en"}}).reply_lang == "en"
    assert Settings.from_config({"reply_lang": " AUTO "}).reply_lang == "auto"
    assert Settings.from_config({"reply_lang": "klingon"}).reply_lang == "zh"


def test_auto_reads_the_users_own_words_only():
    """A Chinese nickname in an @-mention, a quoted Chinese message or a picture does not make
    an English message Chinese."""
    quoted = Reply(id="1", chain=[], sender_nickname="张三", message_str="这是引用的中文")
    event = make_event(
        "draw her as a knight",
        [At(qq="30003", name="张三"), quoted, Image.fromURL("https://example.com/a.png")],
        platform="aiocqhttp",
    )
    assert chat_lang("auto", event) is EN
    assert chat_lang("auto", make_event("画成骑士", platform="telegram")) is ZH
    assert chat_lang("zh", make_event("draw", platform="telegram")) is ZH
