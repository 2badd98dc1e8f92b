"""Chat commands: the parsing of their arguments (their names are in texts/command_names.py)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from astrbot.api.message_components import At, BaseMessageComponent

from ..core.image_options import normalize_aspect_ratio
from .texts.command_names import Command


def command_argument(message: str, command: Command) -> str:
    """The text after the command word (whichever of its names was used), with its line
    breaks kept.

    AstrBot's own parameter parsing splits on whitespace and would cut a description at the
    first space, so handlers read the whole message instead. The wake prefix is usually gone
    already; a leftover "/" is tolerated.
    """
    names = "|".join(re.escape(n) for n in sorted(command.names, key=len, reverse=True))
    match = re.match(rf"\s*/?\s*(?:{names})(?=\s|$)(.*)\Z", message, re.DOTALL)
    return match.group(1).strip() if match else ""


def wake_prefix_of(config: Mapping[str, Any]) -> str:
    """The prefix that wakes the bot (AstrBot's `wake_prefix`, default "/"), so the help text
    shows commands that work; "" when it is switched off."""
    prefixes = config.get("wake_prefix", ["/"])
    return str(prefixes[0]) if isinstance(prefixes, list) and prefixes else ""


# What users type (input vocabulary, not texts anyone reads): a leading word that asks for the
# requester's own avatar as the reference picture: `/手办化 我`, `/画图 我的头像 画成油画`,
# `/figure me`, `/draw my avatar as an oil painting`. Phrases match as a prefix, head words
# before the rest; "me" only as the whole argument ("draw me a cat" is no avatar request).
OWN_AVATAR_PHRASES = ("我的头像", "自己的头像", "my avatar", "my own avatar")
OWN_AVATAR_WORDS = frozenset({"我", "自己", "--me", "-me"})
OWN_AVATAR_ALONE = frozenset({"me", "myself"})
_AFTER_PHRASE = " ，,:："  # what may stand between a phrase and the description


def own_avatar_option(argument: str) -> tuple[str, bool]:
    """(the rest of the argument, whether the requester asked for their own avatar)."""
    text = argument.strip()
    if text.lower() in OWN_AVATAR_ALONE:
        return "", True
    for phrase in OWN_AVATAR_PHRASES:
        rest = text[len(phrase) :]
        whole_word = not phrase.isascii() or not rest[:1].isalnum()  # not "my avatars"
        if text.lower().startswith(phrase) and whole_word:
            return rest.lstrip(_AFTER_PHRASE).strip(), True
    head, _, rest = text.partition(" ")
    if head in OWN_AVATAR_WORDS:
        return rest.strip(), True
    return text, False


def without_mentions(text: str, chain: Iterable[BaseMessageComponent] | None) -> str:
    """The text without the `@name(id)` marks AstrBot's QQ adapter writes for each mention:
    the mentioned people come along as their avatars, not as words of the description."""
    for component in chain or ():
        if isinstance(component, At):
            qq, name = re.escape(str(component.qq)), re.escape(str(component.name or ""))
            text = re.sub(rf"@{name}\({qq}\)|@{qq}(?!\d)", " ", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


# Size and ratio words in a drawing command's text: whole words, anywhere (`/画图 4K 16:9 海边日落`,
# `/画图 海边日落 9:16`). A size is 1K, 2K or 4K in any case; a ratio is two numbers around ":",
# "：" or "比" (checked by the pipeline, which names the valid ones when it is not one), or
# around "x" / "×" when that is a ratio the models know ("1920x1080" and "5x5" stay text).
_SIZE_WORD = re.compile(r"[124]k", re.IGNORECASE)
_RATIO_WORD = re.compile(r"\d{1,2}[:：比]\d{1,2}")
_RATIO_SEPARATORS = re.compile("[：比]")
_TIMES_WORD = re.compile(r"\d{1,2}[xX×]\d{1,2}")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class DrawArgument:
    """A drawing command's text, read: the description, and the options written in it."""

    prompt: str
    own_avatar: bool = False
    image_size: str = ""  # "4K" when the text named a size ("" = the configured default)
    aspect_ratio: str = ""  # "16:9" as written when the text named a ratio


def image_option_words(text: str) -> tuple[str, str, str]:
    """(the text without the first size word and the first ratio word, the size, the ratio)."""
    size = ratio = ""
    cut: list[tuple[int, int]] = []
    for word in _WORD.finditer(text):
        token = word.group()
        if not size and _SIZE_WORD.fullmatch(token):
            size = token.upper()
        elif not ratio and _RATIO_WORD.fullmatch(token):
            ratio = _RATIO_SEPARATORS.sub(":", token)
        elif not ratio and _TIMES_WORD.fullmatch(token) and normalize_aspect_ratio(token):
            ratio = str(normalize_aspect_ratio(token))
        else:
            continue
        cut.append(word.span())
    # The rest as written (line breaks too), with only the option words taken out.
    rest, last = [], 0
    for start, end in cut:
        rest.append(text[last:start])
        last = end
    rest.append(text[last:])
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", re.sub(r"[ \t]{2,}", " ", "".join(rest)))
    return text.strip(), size, ratio


def draw_argument(
    message: str, chain: Iterable[BaseMessageComponent], command: Command
) -> DrawArgument:
    """A drawing command's text without its @-mentions (they come along as avatars) and its
    size and ratio words, and whether it asks for the sender's own avatar."""
    text = without_mentions(command_argument(message, command), chain)
    text, size, ratio = image_option_words(text)
    prompt, own = own_avatar_option(text)
    return DrawArgument(prompt, own, size, ratio)


# `/画图密钥 重置 [tail]` (`/draw_keys reset [tail]`): clear the state of every key, or of the
# one ending in `tail`.
RESET_KEY_WORDS = frozenset({"重置", "清除", "reset", "clear"})


def keys_argument(argument: str) -> tuple[bool, str]:
    """(whether the keys command asks for a reset, the key's last characters or "" for all)."""
    word, _, rest = argument.strip().partition(" ")
    if word.lower() not in RESET_KEY_WORDS:
        return False, ""
    return True, rest.strip()
