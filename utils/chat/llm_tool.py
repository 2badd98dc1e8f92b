"""The tool as AstrBot registered it: its description and its arguments' descriptions are set
from the texts (utils/chat/texts/tool.py) in the configured language at initialize().

AstrBot builds the tool from the handler's docstring when main.py is imported, into its tool
manager's `func_list` (4.14.6 and 4.29.3 alike: a FunctionTool with `description` and a JSON
schema `parameters`). Every tool set AstrBot hands to a chat model is built from that list
afresh (4.29 wraps each tool in a permission proxy that copies both fields), so a change made
here is what the model reads from the next turn on.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

from astrbot.api import logger

from .texts.tool import ToolText

TOOL_NAME = "gemini-pic-gen"


def _raw(handler: object) -> object:
    """The function behind a handler (AstrBot binds it to the plugin instance with partial)."""
    return handler.func if isinstance(handler, functools.partial) else handler


def describe_tool(manager: Any, handler: Callable[..., Any], text: ToolText) -> bool:
    """Set the description of the tool `handler` implements; False if AstrBot has none."""
    tools = [
        t
        for t in getattr(manager, "func_list", ())
        if t.name == TOOL_NAME and _raw(getattr(t, "handler", None)) is handler
    ]
    if not tools:
        logger.warning(f"{TOOL_NAME}: registered tool not found; its description stays as parsed")
        return False
    for tool in tools:
        parameters = copy.deepcopy(tool.parameters or {})
        properties = parameters.get("properties", {})
        for name, description in text.arguments.items():
            if name in properties:
                properties[name]["description"] = description
        tool.parameters = parameters
        tool.description = text.description
    return True
