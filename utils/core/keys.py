"""API key handling: collecting keys from the config, spotting placeholders, masking."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

# Values admins leave behind from examples and templates; they must never reach the network.
_PLACEHOLDER_PATTERN = re.compile(
    r"your|xxx|placeholder|example|api[_-]?key|\.\.\.|…|<|>|填|密钥|key_here|changeme",
    re.IGNORECASE,
)
_MIN_KEY_LENGTH = 16


def is_placeholder_key(key: str) -> bool:
    """True when the value cannot be a real key (blank, template text, too short)."""
    key = key.strip()
    if len(key) < _MIN_KEY_LENGTH or any(ch.isspace() for ch in key):
        return True
    return bool(_PLACEHOLDER_PATTERN.search(key))


def collect_api_keys(keys: object, legacy_key: object = "") -> tuple[str, ...]:
    """Real keys from the list option plus the legacy single-key option, deduplicated in order."""
    candidates: list[str] = []
    if isinstance(keys, str):
        candidates.extend(keys.replace(",", "\n").splitlines())
    elif isinstance(keys, Iterable):
        candidates.extend(str(k) for k in keys if k is not None)
    if isinstance(legacy_key, str):
        candidates.append(legacy_key)
    seen: dict[str, None] = {}
    for candidate in candidates:
        key = candidate.strip()
        if key and not is_placeholder_key(key):
            seen.setdefault(key, None)
    return tuple(seen)


def mask_key(key: str) -> str:
    """A form of the key safe for logs and chat: its family prefix and last four characters."""
    key = key.strip()
    tail = key[-4:] if len(key) >= 12 else ""
    prefix = "sk-or-" if key.startswith("sk-or-") else key[:3] if len(key) >= 12 else ""
    return f"{prefix}…{tail}"


def redact_keys(text: str, keys: Iterable[str]) -> str:
    """Replace every occurrence of a known key in text by its masked form."""
    for key in keys:
        if key:
            text = text.replace(key, mask_key(key))
    return text


def mask_proxy(proxy: str) -> str:
    """Hide a password in `scheme://user:password@host:port`."""
    parts = urlsplit(proxy)
    if parts.password:
        return proxy.replace(f":{parts.password}@", ":***@", 1)
    return proxy
