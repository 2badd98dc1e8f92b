"""What the statistics command and the dashboard show: today's and the last days' statistics
from the ledger, gathered into plain data (worded by utils/chat/texts/spend.py, drawn by the
dashboard page)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..core.settings import SpendPolicy
from ..openrouter.usage import KeyReport
from .days import last_days, local_day
from .ledger import DayTotals, Ledger, Summary

REPORT_DAYS = 7
TOP = 5


@dataclass(frozen=True)
class SpendReport:
    at: float  # epoch seconds the report was made
    today: Summary
    week: Summary  # the last REPORT_DAYS local days, today included
    days: tuple[DayTotals, ...]  # each of those days, oldest first


async def build_report(
    ledger: Ledger, now: float, days: int = REPORT_DAYS, top: int = TOP
) -> SpendReport:
    names = last_days(now, days)
    today = local_day(now)
    return SpendReport(
        at=now,
        today=await ledger.summary(today, today, top),
        week=await ledger.summary(names[0], names[-1], top),
        days=tuple(await ledger.per_day(names)),
    )


@dataclass(frozen=True)
class SpendStats:
    """Everything the statistics command shows, as data."""

    report: SpendReport | None  # None: the ledger could not be read
    keys: Sequence[KeyReport] | None  # what the service says of each key; None: not asked
    policy: SpendPolicy
