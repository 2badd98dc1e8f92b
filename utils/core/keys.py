"""API key handling: collecting keys from the config, spotting placeholders, masking."""

from __future__ import annotations

import logging
import os
import re
import traceback
from collections.abc import Callable, Iterable
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


# What looks like a key even when it is not one of ours, or only a piece of one (a server
# echoing a cut-off key): `sk-...` tokens, and whatever follows "Bearer".
_KEY_SHAPED = re.compile(r"\bsk-[A-Za-z0-9_-]{12,}")
_BEARER = re.compile(r"(\bBearer\s+)([^\s'\",;…]{8,})", re.IGNORECASE)


def redact_keys(text: str, keys: Iterable[str]) -> str:
    """Replace every known key, and anything shaped like a key, by its masked form."""
    for key in keys:
        if key:
            text = text.replace(key, mask_key(key))
    # Not a known key: maybe a piece of one, so no tail of it is shown.
    text = _BEARER.sub(lambda m: m.group(1) + "…", text)
    return _KEY_SHAPED.sub(lambda m: "sk-or-…" if m.group(0).startswith("sk-or-") else "sk-…", text)


def redacted_traceback(exc: BaseException, keys: Iterable[str]) -> str:
    """The traceback of `exc` in Python's own format (no variable values), keys masked."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return redact_keys(text.rstrip(), keys)


class KeyRedactingFilter(logging.Filter):
    """Masks keys in every record of the logger it is added to, tracebacks included.

    AstrBot hands records to loguru, whose tracebacks show the values of the variables on each
    line (an Authorization header, a lease's key). A record's traceback is therefore rendered
    here, in Python's own format, masked, and appended to the message; loguru gets none.
    `keys` is asked at each record: the key list changes with the config.
    """

    def __init__(self, keys: Callable[[], Iterable[str]], only_under: str = "") -> None:
        """`only_under`: rewrite only records made by code under this directory (on a logger
        other code writes to as well); '' rewrites every record."""
        super().__init__()
        self._keys = keys
        self._only_under = os.path.join(os.path.normcase(only_under), "") if only_under else ""

    def filter(self, record: logging.LogRecord) -> bool:
        if self._only_under and not os.path.normcase(record.pathname).startswith(self._only_under):
            return True  # someone else's record: left exactly as it is
        try:
            keys = tuple(self._keys())
        except Exception:  # a log line must never fail because of this
            keys = ()
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message += "\n" + redacted_traceback(record.exc_info[1], keys)
        elif record.exc_text:
            message += "\n" + record.exc_text
        if record.stack_info:
            message += "\n" + record.stack_info
        record.msg, record.args = redact_keys(message, keys), None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def mask_proxy(proxy: str) -> str:
    """Hide a password in `scheme://user:password@host:port`."""
    parts = urlsplit(proxy)
    if parts.password:
        return proxy.replace(f":{parts.password}@", ":***@", 1)
    return proxy
