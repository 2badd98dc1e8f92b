"""Shared fixtures. AstrBot reads ASTRBOT_ROOT at import time, so it is set here, first."""

from __future__ import annotations

import itertools
import logging
import os
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.astrbot_env import use_temp_root

_ROOT = use_temp_root("astrbot-test-")

import aiohttp  # noqa: E402
import pytest  # noqa: E402
import pytest_asyncio  # noqa: E402
from astrbot.core import astrbot_config  # noqa: E402

from tests.fakes.clock import FakeClock  # noqa: E402
from tests.fakes.napcat import REMOTE_NAPCAT, FakeNapCat  # noqa: E402
from tests.fakes.openrouter import FakeOpenRouter, make_png  # noqa: E402
from tests.fakes.translate import FakeTranslate  # noqa: E402
from tests.support import astrbot_compat, harness  # noqa: E402  (imports AstrBot in the order it needs)
from tests.support.keys import REAL_LOOKING_KEYS  # noqa: E402
from tests.support.ledger_rows import NOON  # noqa: E402
from tests.support.logs import captured_log  # noqa: E402
from tests.support.virtual_time import VirtualTime, tuned_policy  # noqa: E402
from utils.core.settings import Settings  # noqa: E402
from utils.core.workers import CpuPool  # noqa: E402
from utils.file_send_server import Receiver  # noqa: E402
from utils.imaging.store import ImageStore  # noqa: E402
from utils.openrouter.key_pool import KeyPool  # noqa: E402
from utils.openrouter.retry_policy import RetryPolicy  # noqa: E402
from utils.spend.ledger import Ledger  # noqa: E402
from utils.ttp import OpenRouterClient  # noqa: E402


@pytest.fixture(scope="session")
def astrbot_root() -> Path:
    return _ROOT


@pytest_asyncio.fixture(scope="session")
async def fake_server() -> AsyncIterator[FakeOpenRouter]:
    server = FakeOpenRouter()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="session")
async def fake_translate_server() -> AsyncIterator[FakeTranslate]:
    """The fake Google Translate, reached through `translate_proxy`; its test CA is trusted
    through SSL_CERT_FILE (read by httpx whenever a client is built)."""
    server = FakeTranslate()
    await server.start()
    previous = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = str(server.ca_file)
    yield server
    if previous is None:
        os.environ.pop("SSL_CERT_FILE", None)
    else:
        os.environ["SSL_CERT_FILE"] = previous
    await server.stop()


@pytest.fixture
def fake_translate(fake_translate_server: FakeTranslate) -> Iterator[FakeTranslate]:
    fake_translate_server.reset()
    yield fake_translate_server
    fake_translate_server.reset()


@pytest_asyncio.fixture(scope="session")
async def astrbot(astrbot_root: Path):
    loaded = await harness.load_plugin(astrbot_root)
    yield loaded
    await loaded.plugin.terminate()


@pytest.fixture
def fake(fake_server: FakeOpenRouter) -> Iterator[FakeOpenRouter]:
    fake_server.reset()
    yield fake_server
    fake_server.reset()


async def _fresh_config(
    astrbot, fake: FakeOpenRouter, fake_translate: FakeTranslate, **saved: Any
) -> dict:
    plugin = await astrbot.restart(
        saved,
        forget=True,
        **harness.plain_settings(fake.base_url, REAL_LOOKING_KEYS[0]),
        translate_proxy=fake_translate.proxy_url,
        translate_timeout=5,
    )
    return plugin.config


@pytest_asyncio.fixture
async def plugin_config(
    astrbot, fake: FakeOpenRouter, fake_translate: FakeTranslate
) -> AsyncIterator[dict]:
    """The plugin started afresh (new key pool, limiter, counters: as after a config save in
    the panel, without AstrBot re-importing it: `astrbot.restart()`) with its config back to
    the defaults, pointing at the fake servers.

    Translation and the progress message (both on by default) start switched off here so
    tests about other behaviour see only their own traffic and messages; tests of those
    features switch them on. Translation, when on, only ever reaches the fake. The
    conversation memory starts empty: no test goes on from another test's picture.
    """
    yield await _fresh_config(astrbot, fake, fake_translate)


@pytest_asyncio.fixture
async def english(
    astrbot, plugin_config: dict, fake: FakeOpenRouter, fake_translate: FakeTranslate
) -> AsyncIterator[dict]:
    """plugin_config (the same dict) with `reply_lang` "en" saved before the plugin started
    again, as after a save in the panel: the tool's description is set in the configured
    language when the plugin starts. Started again afterwards, so later tests find the tool
    described in Chinese."""
    yield await _fresh_config(astrbot, fake, fake_translate, reply_lang="en")
    await astrbot.restart()


@pytest_asyncio.fixture
async def auto_lang(
    astrbot, plugin_config: dict, fake: FakeOpenRouter, fake_translate: FakeTranslate
) -> AsyncIterator[dict]:
    """As `english`, with `reply_lang` "auto"."""
    yield await _fresh_config(astrbot, fake, fake_translate, reply_lang="auto")
    await astrbot.restart()


@pytest_asyncio.fixture
async def napcat() -> AsyncIterator[FakeNapCat]:
    """A fake NapCat OneBot HTTP API for AstrBot's real QQ event (harness.make_qq_event)."""
    server = FakeNapCat()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[Receiver]:
    """The file receiver users run on a remote NapCat host (token "s3cret-token")."""
    server = Receiver(tmp_path / "napcat-inbox", host=REMOTE_NAPCAT, port=0, token="s3cret-token")
    await server.start()
    yield server
    await server.close()


@pytest.fixture(scope="session")
def photo_4k() -> bytes:
    """A 4096x4096 photo-like PNG of about 26 MB (a 4K answer), made once per session."""
    from tests.support.images import photo_png

    return photo_png((4096, 4096))


@pytest.fixture
def plugin_log(astrbot) -> Iterator[list[logging.LogRecord]]:
    """Records of the plugin's own logger (AstrBot's loggers do not propagate to caplog)."""
    with captured_log() as records:
        yield records.records


@pytest_asyncio.fixture
async def virtual_time(astrbot, plugin_config) -> AsyncIterator[VirtualTime]:
    """A second plugin instance on a recording clock, its retry policy without jitter;
    run its tool with `virtual_time.run_tool()`, its handlers through `virtual_time.plugin`."""
    clock = FakeClock()
    policy = tuned_policy(astrbot, clock=clock, rng=lambda: 0.0)
    async with astrbot.instance(clock=clock, retry_policy=policy) as plugin:
        yield VirtualTime(clock, plugin, astrbot)


@pytest.fixture
def tool_timeout() -> Iterator[Callable[[int, str], None]]:
    """Set AstrBot's tool-call timeout under one key (the other removed meanwhile), as an admin
    would in AstrBot's config; everything is put back afterwards."""
    misc = astrbot_config.get("agent_runner", {}).get("config", {}).get("misc")
    provider = astrbot_config.setdefault("provider_settings", {})
    saved = (
        dict(misc) if isinstance(misc, dict) else None,
        "tool_call_timeout" in provider,
        provider.get("tool_call_timeout"),
    )

    def set_timeout(seconds: int, key: str | None = None) -> None:
        """`key`: "agent_runner" or "provider_settings"; None = where this AstrBot keeps it."""
        if key is None:
            in_runner = astrbot_compat.keeps_tool_timeout_in_agent_runner()
            key = "agent_runner" if in_runner else "provider_settings"
        if isinstance(misc, dict):
            misc.pop("tool_call_timeout", None)
        provider.pop("tool_call_timeout", None)
        if key == "agent_runner":
            assert isinstance(misc, dict)
            misc["tool_call_timeout"] = seconds
        else:
            provider["tool_call_timeout"] = seconds

    yield set_timeout
    if saved[0] is not None and isinstance(misc, dict):
        misc.clear()
        misc.update(saved[0])
    provider.pop("tool_call_timeout", None)
    if saved[1]:
        provider["tool_call_timeout"] = saved[2]


@pytest.fixture
def admin(astrbot, plugin_config) -> Iterator[str]:
    """Make harness.ADMIN_ID a bot admin in AstrBot's config; restore that and the plugin's
    config file (admin commands save it)."""
    config_file = astrbot.root / "data" / "config" / f"{astrbot.plugin_dir.name}_config.json"
    admins = list(astrbot_config["admins_id"])
    astrbot_config["admins_id"] = [*admins, harness.ADMIN_ID]
    saved_file = config_file.read_bytes()
    yield harness.ADMIN_ID
    astrbot_config["admins_id"] = admins
    config_file.write_bytes(saved_file)


@pytest.fixture
def noon_clock() -> FakeClock:
    """A virtual clock at a local noon (tests.support.ledger_rows.NOON): ledger days are local."""
    return FakeClock(wall_start=NOON)


@pytest_asyncio.fixture
async def ledger(tmp_path: Path, noon_clock: FakeClock) -> AsyncIterator[Ledger]:
    """A spend ledger of its own in a temp directory, on `noon_clock`."""
    opened = Ledger(tmp_path, clock=noon_clock)
    await opened.open()
    yield opened
    await opened.close()


_DAYS = itertools.count()


@pytest_asyncio.fixture
async def on_day(astrbot, plugin_config) -> AsyncIterator[tuple[FakeClock, Any]]:
    """A plugin instance whose wall clock stands at noon of a day no other test uses (in 2020
    and after): only its own generations are "today" in the shared ledger."""
    noon = datetime(2020, 1, 1, 12) + timedelta(days=next(_DAYS))
    clock = FakeClock(wall_start=noon.timestamp())
    async with astrbot.instance(clock=clock) as plugin:
        yield clock, plugin


@pytest_asyncio.fixture
async def locked_ledger(astrbot, plugin_config) -> AsyncIterator[Callable[[], None]]:
    """The loaded plugin started again while another connection keeps its spend ledger locked
    (SQLite's exclusive locking mode: not even reads get through), as a backup tool or a second
    bot on the same data directory would. Yields the function that lets the lock go."""
    plugin = astrbot.plugin
    await plugin.terminate()  # its own connection closes: the lock can be taken
    path = plugin.spend.ledger.path
    locker = sqlite3.connect(str(path), isolation_level=None)
    locker.execute("PRAGMA locking_mode=EXCLUSIVE")
    locker.execute("BEGIN EXCLUSIVE")
    locker.execute("COMMIT")  # in exclusive locking mode the lock stays until it closes
    await plugin.initialize()
    yield locker.close
    locker.close()


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    """A small photo file (80x60 PNG whose prompt chunk says "a photo of a corgi")."""
    path = tmp_path / "photo.png"
    path.write_bytes(make_png("a photo of a corgi", size=(80, 60)))
    return path


@pytest_asyncio.fixture
async def client_for(fake, tmp_path) -> AsyncIterator[Callable[[str], OpenRouterClient]]:
    """An OpenRouterClient for a model, talking to the fake over loopback (one try per key)."""
    cpu = CpuPool(1)
    async with aiohttp.ClientSession() as session:

        def make(model: str) -> OpenRouterClient:
            settings = Settings.from_config(
                {
                    "openrouter_api_keys": [REAL_LOOKING_KEYS[0]],
                    "custom_api_base": fake.base_url,
                    "model_name": model,
                    "max_retry_attempts": 1,
                }
            )
            return OpenRouterClient(
                session,
                settings,
                ImageStore(tmp_path / "images"),
                pool=KeyPool(settings.api_keys),
                policy=RetryPolicy(),
                cpu=cpu,
            )

        yield make
    cpu.close()
