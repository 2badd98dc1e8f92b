"""Shared fixtures. AstrBot reads ASTRBOT_ROOT at import time, so it is set here, first."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

_ROOT = Path(tempfile.mkdtemp(prefix="astrbot-test-"))
os.environ["ASTRBOT_ROOT"] = str(_ROOT)
os.environ["ASTRBOT_DISABLE_METRICS"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pytest  # noqa: E402
import pytest_asyncio  # noqa: E402

from tests import harness  # noqa: E402  (imports AstrBot in the order it needs)
from tests.fakes.openrouter import FakeOpenRouter  # noqa: E402

REAL_LOOKING_KEYS = (
    "sk-or-v1-" + "a1" * 32,
    "sk-or-v1-" + "b2" * 32,
    "sk-or-v1-" + "c3" * 32,
)


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
async def astrbot(astrbot_root: Path):
    loaded = await harness.load_plugin(astrbot_root)
    yield loaded
    await loaded.plugin.terminate()


@pytest.fixture
def fake(fake_server: FakeOpenRouter) -> Iterator[FakeOpenRouter]:
    fake_server.reset()
    yield fake_server
    fake_server.reset()


@pytest.fixture
def plugin_config(astrbot, fake: FakeOpenRouter) -> Iterator[dict]:
    """The live plugin config pointed at the fake server; restored after the test.

    The key pool (cooldowns, counters) and the retry policy live on the plugin instance for the
    whole session, so each test starts with a fresh pool and gets the default policy back.
    """
    plugin = astrbot.plugin
    config = plugin.config
    saved = dict(config)
    saved_policy = plugin.retry_policy
    plugin.key_pool = None
    config.update(
        openrouter_api_keys=[REAL_LOOKING_KEYS[0]],
        openrouter_api_key="",
        custom_api_base=fake.base_url,
        model_name="google/gemini-2.5-flash-image",
        max_retry_attempts=3,
        nap_server_address="localhost",
    )
    yield config
    config.clear()
    config.update(saved)
    plugin.retry_policy = saved_policy
    plugin.key_pool = None
