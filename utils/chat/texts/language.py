"""A chat's language, and the pair primitives every text is written with.

A text exists as a pair, Chinese and English side by side: `say(lang, zh=..., en=...)` for a
sentence built on the spot, `Words(zh, en)` for a table entry. Both sides are required, so a
missing translation cannot be written (tests/chat/texts/test_pairs.py checks the sources).

The language is chosen once per request or command from the `reply_lang` setting and the
user's message (`chat_lang`), carried on the request and passed to every wording function.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from astrbot.api.message_components import Plain

from ...core.settings import REPLY_LANGS


class Lang(enum.Enum):
    ZH = "zh"
    EN = "en"


ZH = Lang.ZH
EN = Lang.EN

# The `reply_lang` setting's values (utils/core/settings.py keeps the raw choice).
REPLY_ZH, REPLY_EN, REPLY_AUTO = REPLY_LANGS


def say(lang: Lang, *, zh: str, en: str) -> str:
    """The side of a pair for `lang`. Both sides are always written."""
    return zh if lang is Lang.ZH else en


@dataclass(frozen=True)
class Words:
    """A table entry: the same text in both languages."""

    zh: str
    en: str

    def __call__(self, lang: Lang) -> str:
        return self.zh if lang is Lang.ZH else self.en


_LIST = Words("、", ", ")
_CLAUSES = Words("；", "; ")
_PHRASES = Words("，", ", ")


def listing(lang: Lang, items: Iterable[str]) -> str:
    """Items of a list as one run of text: "a、b、c" / "a, b, c"."""
    return _LIST(lang).join(items)


def clauses(lang: Lang, items: Iterable[str]) -> str:
    """Clauses of one sentence: "a；b" / "a; b"."""
    return _CLAUSES(lang).join(items)


def phrases(lang: Lang, items: Iterable[str]) -> str:
    """Phrases of one clause: "a，b" / "a, b"."""
    return _PHRASES(lang).join(items)


def sentences(lang: Lang, items: Iterable[str]) -> str:
    """Whole sentences one after another: Chinese runs them on, English puts a space between."""
    return say(lang, zh="", en=" ").join(item for item in items if item)


def on_off(lang: Lang, value: bool) -> str:
    return say(lang, zh="开启", en="on") if value else say(lang, zh="关闭", en="off")


# --- choosing a chat's language -------------------------------------------------------------

# Han characters (CJK unified ideographs, extension A, compatibility ideographs).
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
# Platforms whose users mostly read Chinese (AstrBot's adapter names): QQ, WeChat, WeCom,
# DingTalk, Lark/Feishu, KOOK and AstrBot's own WebChat. Everything else (Telegram, Discord,
# Slack, LINE, Misskey, Mattermost, Satori, ...) gets English.
CHINESE_PLATFORMS = frozenset(
    {
        "aiocqhttp",
        "qq_official",
        "qq_official_webhook",
        "weixin_oc",
        "weixin_official_account",
        "wechatpadpro",
        "gewechat",
        "wecom",
        "wecom_ai_bot",
        "dingtalk",
        "lark",
        "kook",
        "webchat",
    }
)


def lang_of_text(text: str, platform: str) -> Lang:
    """The auto rule: Han characters -> Chinese; Latin letters and no Han -> English; neither
    (emoji, only a picture) -> by the platform."""
    if _HAN.search(text):
        return Lang.ZH
    if _LATIN.search(text):
        return Lang.EN
    return Lang.ZH if platform in CHINESE_PLATFORMS else Lang.EN


def choose_lang(setting: str, text: str, platform: str) -> Lang:
    """The language of one request or command, from the `reply_lang` setting."""
    if setting == REPLY_EN:
        return Lang.EN
    if setting == REPLY_AUTO:
        return lang_of_text(text, platform)
    return Lang.ZH


def own_words(event: Any) -> str:
    """The user's own text in a message: its plain-text parts, without @-mentions (their
    names), quoted messages or pictures."""
    parts = [c.text for c in event.get_messages() or () if isinstance(c, Plain)]
    return " ".join(parts) if parts else str(event.message_str or "")


def chat_lang(setting: str, event: Any) -> Lang:
    """The language to answer `event` in (an AstrMessageEvent)."""
    if setting not in (REPLY_EN, REPLY_AUTO):
        return Lang.ZH
    return choose_lang(setting, own_words(event), event.get_platform_name())
