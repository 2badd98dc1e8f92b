"""Local calendar days: the unit of every daily cap and of the ledger's statistics.

Days are the bot host's local days (its time zone), named 'YYYY-MM-DD'; a day ends at local
midnight, when the daily caps reset.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta


def local_day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).date().isoformat()


def midnight(day: date) -> float:
    """The epoch seconds of local midnight at the start of `day` (naive datetimes are local)."""
    return datetime(day.year, day.month, day.day).timestamp()


def next_midnight(epoch: float) -> float:
    """The next local midnight after `epoch`: when today's caps reset."""
    today = datetime.fromtimestamp(epoch).date()
    return midnight(today + timedelta(days=1))


def last_days(epoch: float, count: int) -> list[str]:
    """The `count` local days ending with the day of `epoch`, oldest first."""
    today = datetime.fromtimestamp(epoch).date()
    return [(today - timedelta(days=back)).isoformat() for back in range(count - 1, -1, -1)]
