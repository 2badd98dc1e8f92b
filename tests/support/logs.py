"""Capture what the plugin logs. AstrBot's loggers do not propagate, so caplog sees nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.harness import PLUGIN_DIR_NAME

# The plugin's own logger (astrbot.api.logger routes plugin modules to it) and AstrBot's
# global one (used when a utils module is imported outside the plugin package).
LOGGER_NAMES = (f"astrbot.plugin.{PLUGIN_DIR_NAME}", "astrbot")


class LogRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def text(self) -> str:
        return "\n".join(r.getMessage() for r in self.records)

    def at(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]


@contextmanager
def captured_log() -> Iterator[LogRecords]:
    handler = LogRecords()
    loggers = [logging.getLogger(name) for name in LOGGER_NAMES]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        for lg, level in zip(loggers, saved, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
