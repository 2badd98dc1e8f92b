"""Chat commands: the parsing of their arguments (their names are in texts/command_names.py)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from astrbot.api.message_components import At, BaseMessageComponent

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


def draw_argument(
    message: str, chain: Iterable[BaseMessageComponent], command: Command
) -> tuple[str, bool]:
    """A drawing command's text without its @-mentions (they come along as avatars), and
    whether it asks for the sender's own avatar."""
    return own_avatar_option(without_mentions(command_argument(message, command), chain))
