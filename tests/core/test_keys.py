"""Keys never reach a log line: known keys, pieces of keys, and tracebacks."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from astrbot.core.log import LogManager

from tests.support.harness import PLUGIN_DIR_NAME
from tests.support.keys import REAL_LOOKING_KEYS, assert_no_key_leaked
from tests.support.logs import LogRecords
from utils.core.keys import KeyRedactingFilter, mask_key, redact_keys, redacted_traceback

try:
    from loguru import logger as loguru_logger
except ImportError:  # AstrBot 4.14.6 logs through the standard logging module, no loguru sink
    loguru_logger = None

# What these tests check is loguru's traceback sink (AstrBot 4.28+), and the plugin's own
# logger there; on 4.14.6 neither exists.
needs_loguru = pytest.mark.skipif(loguru_logger is None, reason="AstrBot without loguru (4.14)")

KEY = REAL_LOOKING_KEYS[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key {KEY} rejected", "key sk-or-…a1a1 rejected"),
        (f"Invalid key {KEY[:30]}... for user 7", "Invalid key sk-or-…... for user 7"),
        ("Authorization: Bearer abcdefgh12345678", "Authorization: Bearer …"),
        (f"Bearer {KEY}", "Bearer sk-or-…a1a1"),
        ("sk-short and task-runner stay", "sk-short and task-runner stay"),
        (mask_key(KEY), mask_key(KEY)),  # masking twice changes nothing
    ],
)
def test_redact_keys(text, expected):
    assert redact_keys(text, [KEY]) == expected


def _fail_with_the_key_in_a_variable(key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    raise RuntimeError("request failed" + headers["Authorization"][:0])


def _log_a_failure(log: logging.Logger) -> None:
    try:
        _fail_with_the_key_in_a_variable(KEY)
    except RuntimeError:
        log.error(f"crashed while using {KEY}", exc_info=True)


def _through_astrbot(with_filter: bool) -> str:
    """What AstrBot's log sink (loguru, variable values shown) makes of one failure."""
    log = LogManager.GetLogger("astrbot.plugin.redaction-test")
    lines: list[str] = []
    sink = loguru_logger.add(lines.append, format="{message}", diagnose=True, backtrace=True)
    redacting = KeyRedactingFilter(lambda: [KEY])
    if with_filter:
        log.addFilter(redacting)
    try:
        _log_a_failure(log)
    finally:
        log.removeFilter(redacting)
        loguru_logger.remove(sink)
    return "".join(lines)


@needs_loguru
def test_a_traceback_through_astrbots_log_shows_no_key():
    unfiltered = _through_astrbot(with_filter=False)
    assert KEY in unfiltered  # loguru prints the header's value: what the filter is for

    logged = _through_astrbot(with_filter=True)
    assert_no_key_leaked(logged)
    assert "crashed while using sk-or-…a1a1" in logged
    assert "Traceback (most recent call last)" in logged
    assert "RuntimeError: request failed" in logged
    assert "_fail_with_the_key_in_a_variable" in logged


def test_redacted_traceback_of_a_chained_error():
    try:
        try:
            _fail_with_the_key_in_a_variable(KEY)
        except RuntimeError as exc:
            raise ValueError(f"wrapped {KEY}") from exc
    except ValueError as exc:
        text = redacted_traceback(exc, [KEY])
    assert_no_key_leaked(text)
    assert "RuntimeError: request failed" in text and "ValueError: wrapped sk-or-…a1a1" in text


def test_the_filter_survives_a_failing_key_source():
    def broken() -> list[str]:
        raise OSError("config unreadable")

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    assert KeyRedactingFilter(broken).filter(record)
    assert record.getMessage() == "hello there"


@needs_loguru
async def test_the_plugin_masks_its_keys_in_every_record_of_its_logger(astrbot, plugin_config):
    """The loaded plugin puts the filter on the logger its modules log to, with the keys of
    its live config; a reload (plugin_config) takes it off the old instance's logger."""
    log = logging.getLogger(f"astrbot.plugin.{PLUGIN_DIR_NAME}")
    # The plugin's own class (imported from its directory), not this checkout's.
    filters = [f for f in log.filters if type(f).__name__ == KeyRedactingFilter.__name__]
    assert len(filters) == 1
    plugin_config["openrouter_api_keys"] = [REAL_LOOKING_KEYS[1]]
    lines: list[str] = []
    sink = loguru_logger.add(lines.append, format="{message}", diagnose=True, backtrace=True)
    try:
        try:
            _fail_with_the_key_in_a_variable(REAL_LOOKING_KEYS[1])
        except RuntimeError:
            log.error("plugin failed", exc_info=True)
    finally:
        loguru_logger.remove(sink)
    assert "RuntimeError: request failed" in "".join(lines)
    assert_no_key_leaked("".join(lines))


# --- where the filters sit: the loggers that make the records -------------------------------------


@contextmanager
def _seen_on(log: logging.Logger) -> Iterator[list[logging.LogRecord]]:
    """The records `log` hands to its handlers (after its filters), at any level."""
    records = LogRecords()
    level = log.level
    log.addHandler(records)
    log.setLevel(logging.DEBUG)
    try:
        yield records.records
    finally:
        log.removeHandler(records)
        log.setLevel(level)


@pytest.mark.parametrize("name", ["aiohttp.client", "httpx", "httpcore.http2", "hpack.hpack"])
async def test_a_debug_record_of_an_http_library_with_a_key_comes_out_masked(
    astrbot, plugin_config, name
):
    log = logging.getLogger(name)
    with _seen_on(log) as records:
        log.debug("POST %s headers=%s", "https://openrouter.ai", {"Authorization": f"Bearer {KEY}"})
    [record] = records
    assert_no_key_leaked(record.getMessage())
    assert "Bearer sk-or-…a1a1" in record.getMessage()


def _record_from(log: logging.Logger, pathname: str) -> logging.LogRecord:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        exc_info = sys.exc_info()
    return log.makeRecord(log.name, logging.ERROR, pathname, 7, "used %s", (KEY,), exc_info)


async def test_only_the_plugins_own_records_are_rewritten(astrbot, plugin_config):
    own_logger = astrbot.plugin.pipeline._redaction._plugin_logger  # "astrbot" on 4.14
    own_file = str(astrbot.plugin_dir / "utils" / "chat" / "pipeline.py")
    with _seen_on(own_logger) as records:
        own_logger.handle(_record_from(own_logger, own_file))
    [own] = records
    assert own.args is None and own.exc_info is None  # rendered, masked
    assert own.getMessage().startswith("used sk-or-…a1a1\nTraceback")

    # AstrBot's own logger (shared by every plugin on 4.14) and another plugin's (4.28+).
    other_file = str(astrbot.root / "data" / "plugins" / "other_plugin" / "main.py")
    for log in (logging.getLogger("astrbot"), logging.getLogger("astrbot.plugin.other_plugin")):
        record = _record_from(log, other_file)
        with _seen_on(log) as records:
            log.handle(record)
        [seen] = records
        assert seen is record and seen.args == (KEY,) and seen.exc_info is not None
        assert seen.msg == "used %s"  # exactly as it was made


async def test_unload_takes_the_filters_off(astrbot, plugin_config):
    plugin = type(astrbot.plugin)(astrbot.context, plugin_config)
    await plugin.initialize()
    log = logging.getLogger("aiohttp.client")
    count = len(log.filters)
    await plugin.terminate()
    assert len(log.filters) == count - 1
