"""Admin commands' side of the configuration: validating new values and describing settings."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from ..core.errors import ConfigSaveError, InvalidArgumentError
from ..core.keys import mask_key
from ..core.settings import DEFAULT_API_BASE, Settings

# OpenRouter ids look like `vendor/model-name[:variant]`; gateways may use bare names.
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-/:@+]{0,199}")
RESET_WORDS = frozenset({"默认", "官方", "重置", "default", "reset", "official"})


def parse_model_id(text: str) -> str:
    model = text.strip()
    if not _MODEL_ID.fullmatch(model):
        raise InvalidArgumentError(
            f"rejected model id {model[:80]!r}",
            "模型 ID 格式不对：应形如 google/gemini-2.5-flash-image，不能包含空格或中文。",
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
            f"rejected api base {value[:80]!r}",
            "API 地址格式不对：应形如 https://example.com/api 或 https://example.com/api/v1；"
            "填“默认”恢复 OpenRouter 官方地址。",
        )
    return value.rstrip("/")


def describe_settings(settings: Settings) -> str:
    """A Chinese summary for admins. Keys appear only masked."""
    keys = "、".join(mask_key(k) for k in settings.api_keys) or "未配置"
    api_base = settings.api_base
    if api_base == DEFAULT_API_BASE:
        api_base += "（官方）"
    limits = settings.limits

    def per_minute(value: int) -> str:
        return f"每分钟 {value} 次" if value else "不限"

    lines = [
        "当前画图插件设置：",
        f"模型：{settings.model}",
        f"API 地址：{api_base}",
        f"API 密钥（{len(settings.api_keys)} 个）：{keys}",
        f"每个密钥最大尝试次数：{settings.max_retry_attempts}",
        f"中文描述翻译：{'开启' if settings.translate_prompt else '关闭'}"
        f"（超时 {settings.translate_timeout:g} 秒"
        + (f"，代理 {_mask_proxy(settings.translate_proxy)}" if settings.translate_proxy else "")
        + "）",
        f"进度提示：{'开启' if settings.progress_message else '关闭'}",
        f"每人频率限制：{per_minute(limits.user_per_minute)}",
        f"每群频率限制：{per_minute(limits.group_per_minute)}",
        f"群白名单：{'、'.join(sorted(limits.group_allowlist)) or '未设置（所有群可用）'}",
        f"群黑名单：{'、'.join(sorted(limits.group_denylist)) or '未设置'}",
        f"NapCat 主机：{settings.nap_server_address or 'localhost'}:{settings.nap_server_port}",
    ]
    return "\n".join(lines)


def _mask_proxy(proxy: str) -> str:
    """Hide a password in `scheme://user:password@host:port`."""
    parts = urlsplit(proxy)
    if parts.password:
        return proxy.replace(f":{parts.password}@", ":***@", 1)
    return proxy


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
