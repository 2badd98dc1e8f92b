"""Ledger rows for spend tests: a local noon to put them at, and a row with sensible defaults."""

from __future__ import annotations

from datetime import datetime

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
