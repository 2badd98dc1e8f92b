"""Admin commands' side of the configuration: validating new values and saving them."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from astrbot.api import logger

from ..core.errors import ConfigSaveError, InvalidArgumentError
from ..core.settings import normalize_api_base
from .texts import admin as admin_texts
from .texts.failures import user_message
from .texts.language import Lang

# OpenRouter ids look like `vendor/model-name[:variant]`; gateways may use bare names.
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-/:@+]{0,199}")
# What admins type to go back to OpenRouter's address (input vocabulary, not a text).
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


class SettingsEditor:
    """Admins' changes to the plugin config: one at a time, applied at once, then persisted."""

    def __init__(self, config: MutableMapping[str, Any]) -> None:
        self._config = config
        self._lock = asyncio.Lock()

    async def switch_model(self, lang: Lang, admin_id: str, text: str) -> str:
        try:
            model = parse_model_id(text)
        except InvalidArgumentError as exc:
            return user_message(lang, exc)
        done = admin_texts.model_switched(lang, model)
        return await self.change(lang, admin_id, done, model_name=model)

    async def switch_api_base(self, lang: Lang, admin_id: str, text: str) -> str:
        try:
            api_base = parse_api_base(text)
        except InvalidArgumentError as exc:
            return user_message(lang, exc)
        official = not api_base
        done = admin_texts.api_base_switched(lang, normalize_api_base(api_base), official)
        return await self.change(lang, admin_id, done, custom_api_base=api_base)

    async def change(self, lang: Lang, admin_id: str, done: str, **values: object) -> str:
        """Apply and save `values`; the reply for the admin (`done` says what changed)."""
        async with self._lock:
            logger.info(f"gemini-pic-gen: admin {admin_id} set {values}")
            try:
                await apply_and_save(self._config, values)
            except ConfigSaveError as exc:
                logger.error(f"gemini-pic-gen: {exc.detail}")
                return admin_texts.setting_not_saved(lang, done, exc)
        return admin_texts.setting_saved(lang, done)
