"""Ledger rows for spend tests: a local noon to put them at, a row with sensible defaults, and
the rows a plugin instance recorded for one user."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from utils.core.charges import Outcome
from utils.spend.ledger import LedgerEntry

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
    size: str = "1K",
    outcome: str = Outcome.PICTURE,
    generation_id: str = "",
) -> LedgerEntry:
    return LedgerEntry(
        at=at,
        platform=platform,
        user_id=user,
        group_id=group,
        model=model,
        pictures=pictures,
        size=size,
        prompt_tokens=10,
        completion_tokens=1290,
        cost=cost,
        key_mask="sk-or-…a1a1",
        files=files,
        outcome=outcome,
        generation_id=generation_id,
    )


_IDS = itertools.count(1)


def fresh_id(prefix: str) -> str:
    """A user or group id no other test uses (the plugin's ledger is shared by the session)."""
    return f"{prefix}{next(_IDS):04d}"


async def rows_of(plugin: Any, user: str) -> list[LedgerEntry]:
    """The ledger's rows of `user` (other tests' rows share the file)."""
    return [r for r in await plugin.spend.ledger.latest(1000) if r.user_id == user]
