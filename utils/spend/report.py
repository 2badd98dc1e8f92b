"""What `/画图统计` and the dashboard show: today's and the last days' statistics from the ledger,
gathered into plain data (worded in texts.py, drawn by the dashboard page)."""

from __future__ import annotations

from dataclasses import dataclass

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
