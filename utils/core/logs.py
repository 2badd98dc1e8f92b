"""Keys never reach a log: the filters that mask them, and where they sit.

Two kinds of records may carry a key: the plugin's own, and those of the HTTP libraries that
carry its requests (aiohttp for OpenRouter; httpx, httpcore and hpack under googletrans). The
filters sit on the loggers that make those records, so they run before any handler, whichever
handlers AstrBot set up: 4.14.6 writes through handlers on its `astrbot` logger (which plugins
share: only records from this plugin's files are rewritten there), and the root logger's
records go to the last-resort handler; 4.28+ gives each plugin a logger of its own and bridges
every logger to loguru. No other record is touched.

A filter on a logger sees only the records made on that very logger, not those of its children,
so each library logger is named here; naming one creates it, and the library gets the same
(filtered) object when it imports later (httpcore's and hpack's appear only when googletrans
builds its first client).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable

from .keys import KeyRedactingFilter

# The loggers of aiohttp 3.x, httpx/httpcore 0.2x-1.x, hpack 4 and googletrans 4.
REQUEST_LOGGERS = (
    "aiohttp.access",
    "aiohttp.client",
    "aiohttp.internal",
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.websocket",
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "hpack.hpack",
    "hpack.table",
    "googletrans",
)
_FAMILIES = tuple({name.split(".")[0] for name in REQUEST_LOGGERS})
# AstrBot's own logger, which its 4.14 releases hand to every plugin as well.
SHARED_LOGGER = "astrbot"
# This plugin's directory: the records its code makes name a file under it.
PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def request_loggers() -> list[logging.Logger]:
    """The library loggers above, and any other of their families that exists already."""
    names = set(REQUEST_LOGGERS)
    names.update(
        name for name in logging.root.manager.loggerDict if name.split(".")[0] in _FAMILIES
    )
    return [logging.getLogger(name) for name in sorted(names)]


class LogRedaction:
    """The key-masking filters of one plugin instance, on its logger and the request loggers.
    `keys` is asked at each record: the key list changes with the config."""

    def __init__(self, keys: Callable[[], Iterable[str]], plugin_logger: str) -> None:
        self._plugin_logger = logging.getLogger(plugin_logger)
        shared = plugin_logger == SHARED_LOGGER
        self._own = KeyRedactingFilter(keys, only_under=PLUGIN_DIR if shared else "")
        self._wire = KeyRedactingFilter(keys)
        self._installed: list[tuple[logging.Logger, logging.Filter]] = []

    def install(self) -> None:
        if self._installed:
            return
        self._installed.append((self._plugin_logger, self._own))
        self._installed.extend((log, self._wire) for log in request_loggers())
        for log, redacting in self._installed:
            log.addFilter(redacting)

    def remove(self) -> None:
        installed, self._installed = self._installed, []
        for log, redacting in installed:
            log.removeFilter(redacting)
