"""The spend ledger: rows survive reopening, are pruned after the retention, and add up."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tests.fakes.clock import FakeClock
from tests.support.ledger_rows import DAY, NOON, entry
from utils.core.errors import LedgerError
from utils.spend.days import last_days, local_day, next_midnight
from utils.spend.ledger import LEDGER_FILE, Ledger, Totals


async def test_rows_survive_closing_and_reopening(tmp_path: Path, noon_clock: FakeClock):
    first = Ledger(tmp_path, clock=noon_clock)
    await first.open()
    await first.record(entry(files=("gemini_image_1.png",)))
    await first.record(entry(user="10002", pictures=2, cost=None))
    await first.close()

    again = Ledger(tmp_path, clock=noon_clock)
    await again.open()
    try:
        today = await again.summary(local_day(NOON), local_day(NOON))
        assert today.totals == Totals(generations=2, pictures=3, cost=0.04, unknown=1)
        [latest, older] = await again.latest(5)
        assert older.files == ("gemini_image_1.png",)
        assert older.cost == 0.04 and latest.cost is None
        assert (older.prompt_tokens, older.completion_tokens, older.size) == (10, 1290, "1K")
    finally:
        await again.close()
    assert (tmp_path / LEDGER_FILE).is_file()


async def test_rows_older_than_the_retention_are_pruned(tmp_path: Path, noon_clock: FakeClock):
    ledger = Ledger(tmp_path, retention_days=3, clock=noon_clock)
    await ledger.open()
    for back in range(5):  # today and the four days before
        await ledger.record(entry(NOON - back * DAY))
    await ledger.close()

    await ledger.open()  # opening prunes
    try:
        days = await ledger.per_day(last_days(NOON, 5))
        assert [d.totals.generations for d in days] == [0, 0, 1, 1, 1]
    finally:
        await ledger.close()


async def test_recording_prunes_at_most_hourly(tmp_path: Path, noon_clock: FakeClock):
    ledger = Ledger(tmp_path, retention_days=1, clock=noon_clock)
    await ledger.open()
    try:
        await ledger.record(entry(NOON - DAY))  # yesterday: kept until the next prune
        assert (await ledger.per_day([local_day(NOON - DAY)]))[0].totals.generations == 1
        await ledger.record(entry(NOON + 3600))
        assert (await ledger.per_day([local_day(NOON - DAY)]))[0].totals.generations == 0
    finally:
        await ledger.close()


async def test_per_day_fills_empty_days_and_sums_each_day(ledger: Ledger):
    await ledger.record(entry(NOON - 2 * DAY, pictures=2, cost=0.1))
    await ledger.record(entry(NOON, cost=0.05))
    await ledger.record(entry(NOON + 600, cost=None))
    days = await ledger.last_days(4)
    assert [d.day for d in days] == last_days(NOON, 4)
    assert [d.totals for d in days] == [
        Totals(),
        Totals(1, 2, 0.1, 0),
        Totals(),
        Totals(2, 2, 0.05, 1),
    ]


async def test_summary_ranks_groups_users_and_models(ledger: Ledger):
    rows = [
        entry(user="a", group="g1", cost=0.10),
        entry(user="a", group="g1", cost=0.10),
        entry(user="b", group="g2", pictures=3, cost=0.05),
        entry(user="c", group="", model="google/gemini-3-pro-image-preview", cost=0.2),
        entry(user="d", group="g1", platform="telegram", cost=None),
        entry(NOON - 8 * DAY, user="old", group="g9"),  # outside the range
    ]
    for row in rows:
        await ledger.record(row)
    first = last_days(NOON, 7)[0]
    week = await ledger.summary(first, local_day(NOON), top=3)

    assert week.totals == Totals(5, 7, 0.45, 1)
    assert [(g.platform, g.group_id, g.totals.pictures) for g in week.groups] == [
        ("aiocqhttp", "g2", 3),
        ("aiocqhttp", "g1", 2),
        ("aiocqhttp", "", 1),  # private chats; then telegram's g1 is cut by top=3
    ]
    assert [(u.user_id, u.totals.pictures, round(u.totals.cost, 4)) for u in week.users] == [
        ("b", 3, 0.05),
        ("a", 2, 0.2),
        ("c", 1, 0.2),  # ties with d on pictures: the bigger spender first
    ]
    assert [(m.model, m.totals.pictures) for m in week.models] == [
        ("google/gemini-2.5-flash-image", 6),
        ("google/gemini-3-pro-image-preview", 1),
    ]


async def test_scope_totals_of_one_requester(ledger: Ledger):
    await ledger.record(entry(user="a", group="g1", pictures=2, cost=0.1))
    await ledger.record(entry(user="b", group="g1", cost=0.2))
    await ledger.record(entry(user="a", group="", cost=None))
    await ledger.record(entry(user="a", group="g1", platform="telegram", cost=1.0))
    await ledger.record(entry(NOON - DAY, user="a", group="g1", cost=5.0))  # yesterday

    today = await ledger.scope_totals(local_day(NOON), "aiocqhttp", "a", "g1")
    assert today.user == Totals(2, 3, 0.1, 1)
    assert today.group == Totals(2, 3, pytest.approx(0.3), 0)
    assert today.bot == Totals(4, 5, pytest.approx(1.3), 1)
    private = await ledger.scope_totals(local_day(NOON), "aiocqhttp", "a")
    assert private.group == Totals()


async def test_the_connection_lives_on_the_ledgers_own_thread(ledger: Ledger):
    # SQLite refuses a connection used from another thread than its own: every call of the
    # ledger works, so every call ran on that thread, and not on the event loop's.
    await ledger.record(entry())
    connection = ledger._state.connection
    assert connection is not None
    with pytest.raises(sqlite3.ProgrammingError):
        connection.execute("SELECT 1")


async def test_concurrent_writes_all_land(ledger: Ledger):
    await asyncio.gather(*(ledger.record(entry(user=str(n))) for n in range(50)))
    summary = await ledger.summary(local_day(NOON), local_day(NOON), top=100)
    assert summary.totals.generations == 50 and len(summary.users) == 50


async def test_a_damaged_file_is_set_aside_and_a_new_ledger_starts(tmp_path: Path, noon_clock):
    (tmp_path / LEDGER_FILE).write_bytes(b"this is not a database" * 100)
    ledger = Ledger(tmp_path, clock=noon_clock)
    await ledger.open()
    try:
        await ledger.record(entry())
        assert (await ledger.latest(1))[0].user_id == "10001"
    finally:
        await ledger.close()
    assert [p.name for p in tmp_path.glob(f"{LEDGER_FILE}.broken-*")]


async def test_a_closed_ledger_raises_ledger_error(tmp_path: Path, noon_clock: FakeClock):
    ledger = Ledger(tmp_path, clock=noon_clock)
    with pytest.raises(LedgerError):
        await ledger.record(entry())
    await ledger.open()
    await ledger.close()
    with pytest.raises(LedgerError):
        await ledger.latest()


def test_days_are_local_and_reset_at_local_midnight():
    assert local_day(NOON) == "2026-11-30"
    midnight = next_midnight(NOON)
    assert local_day(midnight) == "2026-12-01"
    assert local_day(midnight - 1) == "2026-11-30"
    assert last_days(NOON, 3) == ["2026-11-28", "2026-11-29", "2026-11-30"]
