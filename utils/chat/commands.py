"""Chat commands: their names and the parsing of their arguments."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

CMD_DRAW = "画图"
CMD_EDIT = "改图"
CMD_FIGURE = "手办化"
CMD_HELP = "画图帮助"
CMD_MODEL = "画图模型"
CMD_API_BASE = "画图接口"
CMD_SETTINGS = "画图配置"
CMD_KEYS = "画图密钥"
CMD_STATS = "画图统计"


def command_argument(message: str, command: str) -> str:
    """The text after the command word, with its line breaks kept.

    AstrBot's own parameter parsing splits on whitespace and would cut a description at the
    first space, so handlers read the whole message instead. The wake prefix is usually gone
    already; a leftover "/" is tolerated.
    """
    match = re.match(rf"\s*/?\s*{re.escape(command)}(?=\s|$)(.*)\Z", message, re.DOTALL)
    return match.group(1).strip() if match else ""


def wake_prefix_of(config: Mapping[str, Any]) -> str:
    """The prefix that wakes the bot (AstrBot's `wake_prefix`, default "/"), so the help text
    shows commands that work; "" when it is switched off."""
    prefixes = config.get("wake_prefix", ["/"])
    return str(prefixes[0]) if isinstance(prefixes, list) and prefixes else ""
