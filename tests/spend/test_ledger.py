"""The spend ledger: rows survive reopening, are pruned after the retention, and add up."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tests.fakes.clock import FakeClock
from tests.support.ledger_rows import DAY, NOON, entry
from tests.support.logs import captured_log
from utils.core.charges import Outcome
from utils.core.errors import LedgerError
from utils.spend.days import last_days, local_day, next_midnight
from utils.spend.ledger import (
    COST_LOOKED_UP,
    COST_REPORTED,
    COST_UNKNOWN,
    LEDGER_FILE,
    SIZE_UNRECORDED,
    Ledger,
    Totals,
)


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


_NO_DELETE = (
    "CREATE TRIGGER no_delete BEFORE DELETE ON generations "
    "BEGIN SELECT RAISE(ABORT, 'the disk said no'); END"
)


async def test_a_failed_prune_never_fails_the_write_before_it(
    tmp_path: Path, noon_clock: FakeClock
):
    """The row is committed before the hourly prune: a prune that fails (here SQLite itself
    refuses the DELETE) is logged, and the write still returns its row."""
    ledger = Ledger(tmp_path, retention_days=1, clock=noon_clock)
    await ledger.open()
    other = sqlite3.connect(str(ledger.path))
    other.execute(_NO_DELETE)
    other.commit()
    other.close()
    try:
        await ledger.record(entry(NOON - DAY))  # yesterday: what the next prune removes
        with captured_log() as log:
            row_id = await ledger.record(entry(NOON + 3600, user="after"))  # prunes, and fails
        assert row_id > 0
        assert "spend ledger not pruned" in log.text and "the disk said no" in log.text
        assert [r.user_id for r in await ledger.latest(5)] == ["after", "10001"]
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


async def _fresh_after_setting_aside(ledger: Ledger, directory: Path) -> Path:
    """The opened ledger starts empty and takes rows; the old file, set aside, is returned."""
    try:
        await ledger.record(entry(user="fresh"))
        assert [r.user_id for r in await ledger.latest(5)] == ["fresh"]
    finally:
        await ledger.close()
    [kept] = directory.glob(f"{LEDGER_FILE}.broken-*[0-9]")
    return kept


async def test_a_file_that_is_not_a_database_is_set_aside_with_its_side_files(
    tmp_path: Path, noon_clock
):
    content = b"this is not a database" * 100
    (tmp_path / LEDGER_FILE).write_bytes(content)
    (tmp_path / f"{LEDGER_FILE}-wal").write_bytes(b"old wal")
    (tmp_path / f"{LEDGER_FILE}-shm").write_bytes(b"old shm")
    ledger = Ledger(tmp_path, clock=noon_clock)
    with captured_log() as log:
        await ledger.open()
    kept = await _fresh_after_setting_aside(ledger, tmp_path)
    assert kept.read_bytes() == content
    assert kept.with_name(kept.name + "-wal").read_bytes() == b"old wal"
    assert kept.with_name(kept.name + "-shm").read_bytes() == b"old shm"
    assert "not a usable database" in log.text and "with its -wal/-shm files" in log.text


async def test_a_damaged_database_is_set_aside_and_a_new_ledger_starts(tmp_path: Path, noon_clock):
    good = Ledger(tmp_path, clock=noon_clock)
    await good.open()
    for n in range(50):
        await good.record(entry(user=f"u{n}"))
    await good.close()
    data = bytearray((tmp_path / LEDGER_FILE).read_bytes())
    data[100:] = b"\xff" * (len(data) - 100)  # SQLite's header kept, every page garbage
    (tmp_path / LEDGER_FILE).write_bytes(bytes(data))
    ledger = Ledger(tmp_path, clock=noon_clock)
    await ledger.open()
    kept = await _fresh_after_setting_aside(ledger, tmp_path)
    assert kept.read_bytes() == bytes(data)


async def test_a_ledger_locked_by_another_connection_is_kept_and_opens_once_free(
    tmp_path: Path, noon_clock
):
    first = Ledger(tmp_path, clock=noon_clock)
    await first.open()
    await first.record(entry(user="before", cost=0.5))
    await first.close()
    locker = sqlite3.connect(str(tmp_path / LEDGER_FILE), isolation_level=None)
    locker.execute("PRAGMA locking_mode=EXCLUSIVE")
    locker.execute("BEGIN EXCLUSIVE")
    locker.execute("COMMIT")  # in exclusive locking mode the lock stays until it closes
    ledger = Ledger(tmp_path, clock=noon_clock, busy_timeout=0.1)
    try:
        with pytest.raises(LedgerError, match="database is locked"):
            await ledger.open()
        with pytest.raises(LedgerError, match="database is locked"):
            await ledger.latest(5)  # each use tries again
    finally:
        locker.close()
    try:
        [row] = await ledger.latest(5)  # free now: the same file, its rows
        assert (row.user_id, row.cost) == ("before", 0.5)
    finally:
        await ledger.close()
    assert list(tmp_path.glob("*.broken-*")) == []


_SCHEMA_1 = """
CREATE TABLE generations (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, day TEXT NOT NULL, platform TEXT NOT NULL,
    group_id TEXT NOT NULL, user_id TEXT NOT NULL, model TEXT NOT NULL, size TEXT NOT NULL,
    pictures INTEGER NOT NULL, prompt_tokens INTEGER, completion_tokens INTEGER, cost REAL,
    key_mask TEXT NOT NULL, files TEXT NOT NULL
);
CREATE INDEX generations_day ON generations (day);
PRAGMA user_version = 1;
"""


def _old_ledger(path: Path, *extra: str) -> None:
    """A ledger of schema 1 with two rows (cost reported, not), then `extra` statements."""
    old = sqlite3.connect(str(path))
    old.executescript(_SCHEMA_1)
    for cost in (0.039, None):
        old.execute(
            "INSERT INTO generations (ts, day, platform, group_id, user_id, model, size, "
            "pictures, prompt_tokens, completion_tokens, cost, key_mask, files) "
            "VALUES (?, ?, 'aiocqhttp', 'g', 'u', 'm', '', 1, 10, 1290, ?, 'sk-or-…a1a1', '')",
            (NOON, local_day(NOON), cost),
        )
    for statement in extra:
        old.execute(statement)
    old.commit()
    old.close()


async def test_a_ledger_of_schema_1_is_migrated_with_its_rows(tmp_path: Path, noon_clock):
    _old_ledger(tmp_path / LEDGER_FILE)
    ledger = Ledger(tmp_path, clock=noon_clock)
    await ledger.open()
    try:
        rows = await ledger.latest(5)
        assert [(r.outcome, r.size, r.cost_status) for r in rows] == [
            ("picture", SIZE_UNRECORDED, COST_UNKNOWN),
            ("picture", SIZE_UNRECORDED, COST_REPORTED),
        ]
        await ledger.record(entry(size="2K", outcome=Outcome.REFUSAL, cost=0.01, pictures=0))
        today = await ledger.summary(local_day(NOON), local_day(NOON))
        assert today.totals == Totals(3, 2, pytest.approx(0.049), 1, 1, 0.01, 0, 0)
        assert {s.size: s.totals.generations for s in today.sizes} == {"?": 2, "2K": 1}
    finally:
        await ledger.close()
    check = sqlite3.connect(str(tmp_path / LEDGER_FILE))
    assert check.execute("PRAGMA user_version").fetchone()[0] == 2
    check.close()


async def test_a_migration_cut_after_its_columns_still_marks_the_old_rows(
    tmp_path: Path, noon_clock
):
    """What an older migration left after a crash: schema 2's columns there, the version and
    the rows still of schema 1. The version decides, so the rows are marked now."""
    _old_ledger(
        tmp_path / LEDGER_FILE,
        "ALTER TABLE generations ADD COLUMN outcome TEXT NOT NULL DEFAULT 'picture'",
        "ALTER TABLE generations ADD COLUMN generation_id TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE generations ADD COLUMN cost_status TEXT NOT NULL DEFAULT ''",
    )
    ledger = Ledger(tmp_path, clock=noon_clock)
    await ledger.open()
    try:
        rows = await ledger.latest(5)
        assert [(r.size, r.cost_status) for r in rows] == [
            (SIZE_UNRECORDED, COST_UNKNOWN),
            (SIZE_UNRECORDED, COST_REPORTED),
        ]
    finally:
        await ledger.close()


async def test_a_failed_migration_leaves_schema_1_as_it_was(tmp_path: Path, noon_clock):
    """The migration fails after adding its columns (SQLite refuses the UPDATE of the old
    rows): nothing of it stays, and the next open migrates the whole."""
    path = tmp_path / LEDGER_FILE
    _old_ledger(
        path,
        "CREATE TRIGGER no_update BEFORE UPDATE ON generations "
        "BEGIN SELECT RAISE(ABORT, 'not now'); END",
    )
    ledger = Ledger(tmp_path, clock=noon_clock)
    with pytest.raises(LedgerError, match="not now"):
        await ledger.open()
    await ledger.close()
    check = sqlite3.connect(str(path))
    columns = {row[1] for row in check.execute("PRAGMA table_info(generations)")}
    assert "cost_status" not in columns and "outcome" not in columns
    assert check.execute("PRAGMA user_version").fetchone()[0] == 1
    check.execute("DROP TRIGGER no_update")
    check.commit()
    check.close()
    await ledger.open()
    try:
        rows = await ledger.latest(5)
        assert [(r.outcome, r.size, r.cost_status) for r in rows] == [
            ("picture", SIZE_UNRECORDED, COST_UNKNOWN),
            ("picture", SIZE_UNRECORDED, COST_REPORTED),
        ]
    finally:
        await ledger.close()


async def test_outcomes_sizes_and_costs_looked_up_later(ledger: Ledger):
    await ledger.record(entry(cost=0.039, size="2K", files=("gemini_image_a.png",)))
    await ledger.record(entry(cost=0.039, pictures=0, outcome=Outcome.REFUSAL))
    await ledger.record(entry(cost=0.039, pictures=0, outcome=Outcome.TEXT_ONLY))
    cut = await ledger.record(
        entry(cost=None, pictures=0, outcome=Outcome.ABORTED, generation_id="gen-cut")
    )
    made = await ledger.record(entry(cost=0.134, size="4K"))
    await ledger.set_outcome(made, Outcome.UNDELIVERED)

    [pending] = await ledger.pending_costs(NOON - 60, NOON + 60)
    assert (pending.row_id, pending.generation_id, pending.key_mask) == (
        cut,
        "gen-cut",
        "sk-or-…a1a1",
    )
    today = await ledger.summary(local_day(NOON), local_day(NOON))
    assert today.totals == Totals(5, 2, pytest.approx(0.251), 1, 3, pytest.approx(0.078), 1, 1)

    await ledger.set_cost(cut, 0.039, COST_LOOKED_UP)
    assert await ledger.pending_costs(NOON - 60, NOON + 60) == []
    today = await ledger.summary(local_day(NOON), local_day(NOON))
    assert (today.totals.cost, today.totals.unknown, today.totals.pending) == (
        pytest.approx(0.29),
        0,
        0,
    )
    assert today.totals.without_picture_cost == pytest.approx(0.117)
    by_outcome = {o.outcome: o.totals.generations for o in today.outcomes}
    assert by_outcome == {
        "picture": 1,
        "refusal": 1,
        "text_only": 1,
        "aborted": 1,
        "undelivered": 1,
    }
    assert {s.size: s.totals.pictures for s in today.sizes} == {"2K": 1, "1K": 0, "4K": 1}
    rows = {r.outcome: r for r in await ledger.latest(10)}
    assert rows["aborted"].cost_status == COST_LOOKED_UP
    assert rows["picture"].cost_status == COST_REPORTED


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
