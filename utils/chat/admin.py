"""Admin commands' side of the configuration: validating new values and saving them."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from ..core.errors import ConfigSaveError, InvalidArgumentError

# OpenRouter ids look like `vendor/model-name[:variant]`; gateways may use bare names.
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-/:@+]{0,199}")
RESET_WORDS = frozenset({"默认", "官方", "重置", "default", "reset", "official"})


def parse_model_id(text: str) -> str:
    model = text.strip()
    if not _MODEL_ID.fullmatch(model):
        raise InvalidArgumentError(
            f"rejected model id {model[:80]!r}", InvalidArgumentError.MODEL_ID, model[:80]
        )
    return model


def parse_api_base(text: str) -> str:
    """The value to store for `custom_api_base`: '' for the official endpoint."""
    value = text.strip()
    if value.lower() in RESET_WORDS:
        return ""
    parts = urlsplit(value if "://" in value else "https://" + value)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
        raise InvalidArgumentError(
            f"rejected api base {value[:80]!r}", InvalidArgumentError.API_BASE, value[:80]
        )
    return value.rstrip("/")


async def apply_and_save(config: MutableMapping[str, Any], values: Mapping[str, Any]) -> None:
    """Apply at once, then persist through AstrBotConfig.save_config (the web panel shows the
    saved file). On ConfigSaveError the new values still apply until the plugin reloads."""
    config.update(values)
    save = getattr(config, "save_config", None)
    if not callable(save):
        raise ConfigSaveError(f"config object {type(config).__name__} cannot be saved")
    try:
        await asyncio.to_thread(save)
    except Exception as exc:
        raise ConfigSaveError(f"saving the plugin config failed: {exc!r}") from exc
