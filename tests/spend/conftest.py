"""Ledger fixtures: a ledger in a temp directory on a fake clock set to a local noon."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
import pytest_asyncio

from tests.fakes.clock import FakeClock
from utils.spend.ledger import Ledger, LedgerEntry

NOON = datetime(2026, 11, 30, 12, 0, 0).timestamp()  # local time, like the ledger's days
DAY = 86_400.0


def entry(
    at: float = NOON,
    *,
    user: str = "10001",
    group: str = "20002",
    platform: str = "aiocqhttp",
    model: str = "google/gemini-2.5-flash-image",
    pictures: int = 1,
    cost: float | None = 0.04,
    files: tuple[str, ...] = (),
) -> LedgerEntry:
    return LedgerEntry(
        at=at,
        platform=platform,
        user_id=user,
        group_id=group,
        model=model,
        pictures=pictures,
        size="1K",
        prompt_tokens=10,
        completion_tokens=1290,
        cost=cost,
        key_mask="sk-or-…a1a1",
        files=files,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(wall_start=NOON)


@pytest_asyncio.fixture
async def ledger(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Ledger]:
    opened = Ledger(tmp_path, clock=clock)
    await opened.open()
    yield opened
    await opened.close()
