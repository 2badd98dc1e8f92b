"""The spend ledger: one row per billed answer, in SQLite under the plugin's data directory.

Every answer the service bills is a row with its outcome (utils/core/charges.Outcome): a
picture, a refusal, a text-only answer, an invalid picture, a picture made but not sent, an
answer cut midway. Its cost is what the answer reported; an answer that reported none but has
a generation id is `pending` until the spend side looks it up (spend/lookups.py), then
`looked_up`, or `unknown` when it cannot be known. `size` is the size sent (1K/2K/4K; '' = the
model's default; '?' = a row from before sizes were recorded).

The file outlives reloads and restarts (AstrBot keeps `data/plugin_data/<plugin>/` across both);
rows older than the retention (30 local days by default) are pruned on open and then hourly.
Every database call runs on the ledger's own single worker thread: an SQLite connection belongs
to the thread that made it, and one thread also keeps writes in order. SQLite's transactions
mean a crash never leaves a half-written row behind.

Opening: a file that is not a database (or is damaged beyond use) is moved aside with its
-wal/-shm files and a new ledger starts; any other failure (locked by another connection,
cannot open, disk I/O) keeps the file and is a LedgerError, and the next call tries to open it
again.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from astrbot.api import logger

from ..core.charges import Outcome
from ..core.clock import SYSTEM_CLOCK, Clock
from ..core.errors import LedgerError
from ..core.settings import DEFAULT_LEDGER_RETENTION_DAYS
from .days import last_days, local_day

T = TypeVar("T")
LEDGER_FILE = "spend_ledger.sqlite3"
SCHEMA_VERSION = 2
PRUNE_INTERVAL = 3600.0
# How long a call waits for another connection's lock (a request of an unloaded instance still
# writing its row): rows are short appends, so a longer wait means something holds it.
BUSY_TIMEOUT = 0.5
# The size of rows written before the ledger recorded sizes (schema 1).
SIZE_UNRECORDED = "?"
# cost_status: where a row's cost came from.
COST_REPORTED = "reported"  # the answer's usage.cost
COST_LOOKED_UP = "looked_up"  # GET /api/v1/generation afterwards
COST_PENDING = "pending"  # not reported; being looked up by its generation id
COST_UNKNOWN = "unknown"  # not reported and cannot be looked up
_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    day TEXT NOT NULL,
    platform TEXT NOT NULL,
    group_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    model TEXT NOT NULL,
    size TEXT NOT NULL,
    pictures INTEGER NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    cost REAL,
    key_mask TEXT NOT NULL,
    files TEXT NOT NULL,
    outcome TEXT NOT NULL DEFAULT 'picture',
    generation_id TEXT NOT NULL DEFAULT '',
    cost_status TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS generations_day ON generations (day);
"""
# Columns schema 2 added, with what rows of schema 1 (only pictures were recorded) get.
_ADDED_COLUMNS = (
    ("outcome", "TEXT NOT NULL DEFAULT 'picture'"),
    ("generation_id", "TEXT NOT NULL DEFAULT ''"),
    ("cost_status", "TEXT NOT NULL DEFAULT ''"),
)
_WITHOUT_PICTURE = "(" + ", ".join(f"'{o}'" for o in Outcome.WITHOUT_PICTURE) + ")"
# Unknown costs count as 0 in the sum and are counted separately, so a total can say "unknown".
_TOTALS = (
    "COUNT(*), COALESCE(SUM(pictures), 0), COALESCE(SUM(cost), 0.0), "
    "COALESCE(SUM(cost IS NULL), 0), "
    f"COALESCE(SUM(outcome IN {_WITHOUT_PICTURE}), 0), "
    f"COALESCE(SUM(CASE WHEN outcome IN {_WITHOUT_PICTURE} THEN cost END), 0.0), "
    f"COALESCE(SUM(outcome = '{Outcome.UNDELIVERED}'), 0), "
    f"COALESCE(SUM(cost_status = '{COST_PENDING}'), 0)"
)
# SQLite's primary result codes of a file that is no database: SQLITE_CORRUPT, SQLITE_NOTADB.
_NOT_A_DATABASE = frozenset({11, 26})
_SQLITE_HEADER = b"SQLite format 3\x00"


def cost_status_of(cost: float | None, generation_id: str) -> str:
    """A new row's cost status: reported, or to be looked up by its id, or unknown."""
    if cost is not None:
        return COST_REPORTED
    return COST_PENDING if generation_id else COST_UNKNOWN


@dataclass(frozen=True)
class LedgerEntry:
    """One billed answer. `group_id` is '' in private chats; `cost` None = not known (see
    `cost_status`)."""

    at: float  # epoch seconds
    platform: str
    user_id: str
    group_id: str
    model: str
    pictures: int
    size: str = ""  # the image size sent ('1K', '2K', '4K'); '' = the model's default
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None
    key_mask: str = ""
    files: tuple[str, ...] = ()  # base names of the stored images, for the dashboard
    outcome: str = Outcome.PICTURE
    generation_id: str = ""  # OpenRouter's id, to look the cost up when it was not reported
    cost_status: str = ""  # '' = from `cost` and `generation_id` (cost_status_of)

    @property
    def day(self) -> str:
        return local_day(self.at)

    @property
    def status(self) -> str:
        return self.cost_status or cost_status_of(self.cost, self.generation_id)


@dataclass(frozen=True)
class PendingCost:
    """A row whose cost is to be looked up."""

    row_id: int
    generation_id: str
    key_mask: str
    at: float


@dataclass(frozen=True)
class Totals:
    generations: int = 0  # billed answers
    pictures: int = 0
    cost: float = 0.0  # USD, the sum of the known costs
    unknown: int = 0  # answers whose cost is not known (pending included)
    without_picture: int = 0  # answers billed without a picture (refusals, text, invalid, cut)
    without_picture_cost: float = 0.0  # their known cost, part of `cost`
    undelivered: int = 0  # answers whose pictures were made but could not be sent
    pending: int = 0  # answers whose cost is still being looked up

    @property
    def cost_known(self) -> bool:
        """False when some answer's cost is missing from `cost`."""
        return self.unknown == 0

    @classmethod
    def of(cls, row: Sequence[Any]) -> Totals:
        return cls(
            int(row[0]),
            int(row[1]),
            float(row[2]),
            int(row[3]),
            int(row[4]),
            float(row[5]),
            int(row[6]),
            int(row[7]),
        )


@dataclass(frozen=True)
class GroupTotals:
    platform: str
    group_id: str  # '' = private chats
    totals: Totals


@dataclass(frozen=True)
class UserTotals:
    platform: str
    user_id: str
    totals: Totals


@dataclass(frozen=True)
class ModelTotals:
    model: str
    totals: Totals


@dataclass(frozen=True)
class OutcomeTotals:
    outcome: str  # one of Outcome
    totals: Totals


@dataclass(frozen=True)
class SizeTotals:
    size: str  # '1K', '2K', '4K'; '' = the model's default; SIZE_UNRECORDED = not recorded
    totals: Totals


@dataclass(frozen=True)
class DayTotals:
    day: str
    totals: Totals


@dataclass(frozen=True)
class ScopeTotals:
    """Today's totals of one requester: theirs, their group's ('' chat: empty) and the bot's."""

    user: Totals
    group: Totals
    bot: Totals


@dataclass(frozen=True)
class Summary:
    """A range of days: the totals, the biggest groups, users and models, each outcome and
    each size."""

    first_day: str
    last_day: str
    totals: Totals
    groups: tuple[GroupTotals, ...] = ()
    users: tuple[UserTotals, ...] = ()
    models: tuple[ModelTotals, ...] = ()
    outcomes: tuple[OutcomeTotals, ...] = ()
    sizes: tuple[SizeTotals, ...] = ()


@dataclass
class _State:
    connection: sqlite3.Connection | None = None
    last_prune: float = field(default=float("-inf"))


def _connect(path: Path, busy_timeout: float = BUSY_TIMEOUT) -> sqlite3.Connection:
    connection = sqlite3.connect(str(path), timeout=busy_timeout)
    try:
        # WAL with synchronous=NORMAL: a row is a short append, not an fsync per picture (a crash
        # may lose the last rows, never corrupt the file); readers never wait for the writer.
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.executescript(_SCHEMA)
        _migrate(connection)
        connection.commit()
    except BaseException:
        connection.close()
        raise
    return connection


def _migrate(connection: sqlite3.Connection) -> None:
    """Bring a ledger of schema 1 to the current one: the columns it lacks, its rows marked
    as what they were (pictures, their size not recorded, their cost reported or not).

    One transaction with `user_version` (SQLite's DDL is transactional): a crash midway leaves
    schema 1 as it was and the next open starts over, never columns added with the old rows
    unmarked. The steps depend on the version only, so they are safe to run again."""
    if connection.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
        return
    connection.execute("BEGIN IMMEDIATE")
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION:  # not migrated meanwhile by another connection
            _migrate_to_2(connection, existing=version > 0)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.commit()
    except BaseException:
        connection.rollback()
        raise


def _migrate_to_2(connection: sqlite3.Connection, *, existing: bool) -> None:
    columns = {row[1] for row in connection.execute("PRAGMA table_info(generations)")}
    missing = [(name, kind) for name, kind in _ADDED_COLUMNS if name not in columns]
    for name, kind in missing:
        connection.execute(f"ALTER TABLE generations ADD COLUMN {name} {kind}")
    # Every row of schema 1 (schema 2 always writes a status, and sizes only from then on).
    marked = connection.execute(
        "UPDATE generations SET cost_status = CASE WHEN cost IS NULL THEN ? ELSE ? END "
        "WHERE cost_status = ''",
        (COST_UNKNOWN, COST_REPORTED),
    ).rowcount
    connection.execute("UPDATE generations SET size = ? WHERE size = ''", (SIZE_UNRECORDED,))
    if existing or missing or marked:
        logger.info("gemini-pic-gen: spend ledger migrated to schema 2 (outcomes, sizes)")


def _looks_like_sqlite(path: Path) -> bool:
    """Whether the file is missing, empty (SQLite makes a database of both) or starts with
    SQLite's header. An unreadable file is left to SQLite, which says why."""
    try:
        with path.open("rb") as file:
            head = file.read(len(_SQLITE_HEADER))
    except OSError:  # missing (SQLite makes it) or unreadable (SQLite says why)
        return True
    return not head or head == _SQLITE_HEADER


def _not_a_database(exc: sqlite3.DatabaseError) -> bool:
    """Whether opening failed because the file is no (usable) database, rather than because
    it is locked, cannot be opened or the disk failed (OperationalError and the like)."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if isinstance(code, int):
        return (code & 0xFF) in _NOT_A_DATABASE
    return type(exc) is sqlite3.DatabaseError


class Ledger:
    """The ledger file in `directory`. `open()` before use, `close()` on unload."""

    def __init__(
        self,
        directory: Path,
        *,
        retention_days: int = DEFAULT_LEDGER_RETENTION_DAYS,
        clock: Clock = SYSTEM_CLOCK,
        busy_timeout: float = BUSY_TIMEOUT,
    ) -> None:
        self.path = Path(directory) / LEDGER_FILE
        self.retention_days = max(1, retention_days)
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._state = _State()
        self._executor: ThreadPoolExecutor | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spend-ledger")
        await self._call(self._open_blocking)
        await self._call(self._prune_blocking, self._clock.wall())

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(executor, self._close_blocking)
        executor.shutdown(wait=False)

    @property
    def is_open(self) -> bool:
        return self._executor is not None and self._state.connection is not None

    # --- writing ---------------------------------------------------------------------------------

    async def record(self, entry: LedgerEntry) -> int:
        """Write the row; its id."""
        return await self._call(self._record_blocking, entry)

    async def set_cost(self, row_id: int, cost: float | None, status: str) -> None:
        """A looked-up cost (or that it cannot be known) for a row that had none."""
        await self._call(self._set_cost_blocking, row_id, cost, status)

    async def set_outcome(self, row_id: int, outcome: str) -> None:
        await self._call(self._set_outcome_blocking, row_id, outcome)

    async def expire_pending(self, before: float) -> int:
        """Rows before `before` still pending: their cost is unknown now. How many."""
        return await self._call(self._expire_blocking, before)

    async def pending_costs(self, since: float, until: float) -> list[PendingCost]:
        """Rows between `since` and `until` (epoch seconds) whose cost is still to be looked
        up, oldest first."""
        return await self._call(self._pending_blocking, since, until)

    # --- reading ---------------------------------------------------------------------------------

    async def scope_totals(
        self, day: str, platform: str, user_id: str, group_id: str = ""
    ) -> ScopeTotals:
        return await self._call(self._scope_blocking, day, platform, user_id, group_id)

    async def summary(self, first_day: str, last_day: str, top: int = 5) -> Summary:
        return await self._call(self._summary_blocking, first_day, last_day, top)

    async def per_day(self, days: Sequence[str]) -> list[DayTotals]:
        """Totals of each of `days` (ISO dates, oldest first); days without rows are zeros."""
        return await self._call(self._per_day_blocking, tuple(days))

    async def last_days(self, count: int) -> list[DayTotals]:
        return await self.per_day(last_days(self._clock.wall(), count))

    async def latest(self, limit: int = 12) -> list[LedgerEntry]:
        return await self._call(self._latest_blocking, limit)

    # --- the worker thread -----------------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], /, *args: Any) -> T:
        executor = self._executor
        if executor is None:
            raise LedgerError("the ledger is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, functools.partial(fn, *args))
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"ledger {self.path.name}: {type(exc).__name__}: {exc}") from exc
        except RuntimeError as exc:  # the executor was shut down while the call was queued
            raise LedgerError(f"the ledger is closed ({exc})") from exc

    def _db(self) -> sqlite3.Connection:
        if self._state.connection is None:
            # Opening failed before (locked, say): try again, the file is still there.
            self._open_blocking()
        assert self._state.connection is not None
        return self._state.connection

    def _open_blocking(self) -> None:
        if self._state.connection is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not _looks_like_sqlite(self.path):
            # Set aside before SQLite opens it: closing would delete the -wal/-shm beside it.
            self._replace_unusable("it does not start like an SQLite database")
        try:
            self._state.connection = _connect(self.path, self._busy_timeout)
        except sqlite3.DatabaseError as exc:
            if not _not_a_database(exc):
                raise  # locked, cannot open, disk I/O: the file is kept, the caller is told
            self._replace_unusable(str(exc))
            self._state.connection = _connect(self.path, self._busy_timeout)

    def _replace_unusable(self, why: str) -> None:
        kept = self._set_aside()
        logger.warning(
            f"gemini-pic-gen: spend ledger is not a usable database ({why}); moved to "
            f"{kept.name} with its -wal/-shm files, starting a new one"
        )

    def _set_aside(self) -> Path:
        """Move the ledger file and its -wal/-shm files to `<name>.broken-<time>[-wal|-shm]`."""
        kept = self.path.with_name(f"{self.path.name}.broken-{int(time.time())}")
        for suffix in ("", "-wal", "-shm"):
            source = self.path.with_name(self.path.name + suffix)
            if source.exists():
                source.replace(kept.with_name(kept.name + suffix))
        return kept

    def _close_blocking(self) -> None:
        connection, self._state.connection = self._state.connection, None
        if connection is not None:
            connection.close()

    def _prune_blocking(self, now: float) -> int:
        self._state.last_prune = now
        first_kept = last_days(now, self.retention_days)[0]
        with self._db() as db:
            removed = db.execute("DELETE FROM generations WHERE day < ?", (first_kept,)).rowcount
        if removed:
            logger.info(f"gemini-pic-gen: spend ledger pruned {removed} row(s) before {first_kept}")
        return removed

    def _record_blocking(self, entry: LedgerEntry) -> int:
        with self._db() as db:
            cursor = db.execute(
                "INSERT INTO generations (ts, day, platform, group_id, user_id, model, size, "
                "pictures, prompt_tokens, completion_tokens, cost, key_mask, files, outcome, "
                "generation_id, cost_status) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.at,
                    entry.day,
                    entry.platform,
                    entry.group_id,
                    entry.user_id,
                    entry.model,
                    entry.size,
                    max(0, entry.pictures),
                    entry.prompt_tokens,
                    entry.completion_tokens,
                    entry.cost,
                    entry.key_mask,
                    "\n".join(entry.files),
                    entry.outcome,
                    entry.generation_id,
                    entry.status,
                ),
            )
            row_id = int(cursor.lastrowid or 0)
        if entry.at - self._state.last_prune >= PRUNE_INTERVAL:
            self._prune_after_record(entry.at)
        return row_id

    def _prune_after_record(self, now: float) -> None:
        """The hourly prune behind a write. The row is committed by then: a failed prune is
        logged and never fails the write (its caller would keep the row to write it again, and
        count it twice); the next prune is an hour later."""
        try:
            self._prune_blocking(now)
        except (sqlite3.Error, OSError) as exc:
            logger.warning(
                f"gemini-pic-gen: spend ledger not pruned ({type(exc).__name__}: {exc}); "
                "the row is recorded, the next prune is in an hour"
            )

    def _set_cost_blocking(self, row_id: int, cost: float | None, status: str) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE generations SET cost = ?, cost_status = ? WHERE id = ?",
                (cost, status, row_id),
            )

    def _set_outcome_blocking(self, row_id: int, outcome: str) -> None:
        with self._db() as db:
            db.execute("UPDATE generations SET outcome = ? WHERE id = ?", (outcome, row_id))

    def _expire_blocking(self, before: float) -> int:
        with self._db() as db:
            return db.execute(
                "UPDATE generations SET cost_status = ? WHERE cost_status = ? AND ts < ?",
                (COST_UNKNOWN, COST_PENDING, before),
            ).rowcount

    def _pending_blocking(self, since: float, until: float) -> list[PendingCost]:
        rows = self._db().execute(
            "SELECT id, generation_id, key_mask, ts FROM generations "
            "WHERE cost_status = ? AND ts BETWEEN ? AND ? ORDER BY ts, id",
            (COST_PENDING, since, until),
        )
        return [PendingCost(int(r[0]), r[1], r[2], float(r[3])) for r in rows.fetchall()]

    def _totals(self, where: str, args: Sequence[Any]) -> Totals:
        row = self._db().execute(f"SELECT {_TOTALS} FROM generations WHERE {where}", args)
        return Totals.of(row.fetchone())

    def _scope_blocking(self, day: str, platform: str, user_id: str, group_id: str) -> ScopeTotals:
        user = self._totals("day = ? AND platform = ? AND user_id = ?", (day, platform, user_id))
        group = (
            self._totals("day = ? AND platform = ? AND group_id = ?", (day, platform, group_id))
            if group_id
            else Totals()
        )
        return ScopeTotals(user, group, self._totals("day = ?", (day,)))

    def _summary_blocking(self, first_day: str, last_day: str, top: int) -> Summary:
        totals = self._totals("day BETWEEN ? AND ?", (first_day, last_day))
        groups = tuple(
            GroupTotals(r[0], r[1], Totals.of(r[2:]))
            for r in self._ranked("platform, group_id", first_day, last_day, top)
        )
        users = tuple(
            UserTotals(r[0], r[1], Totals.of(r[2:]))
            for r in self._ranked("platform, user_id", first_day, last_day, top)
        )
        models = tuple(
            ModelTotals(r[0], Totals.of(r[1:]))
            for r in self._ranked("model", first_day, last_day, None)
        )
        outcomes = tuple(
            OutcomeTotals(r[0], Totals.of(r[1:]))
            for r in self._ranked("outcome", first_day, last_day, None)
        )
        sizes = tuple(
            SizeTotals(r[0], Totals.of(r[1:]))
            for r in self._ranked("size", first_day, last_day, None)
        )
        return Summary(first_day, last_day, totals, groups, users, models, outcomes, sizes)

    def _ranked(
        self, keys: str, first_day: str, last_day: str, limit: int | None
    ) -> list[tuple[Any, ...]]:
        """Rows of (key columns..., totals...) for the range, most pictures (then spend) first."""
        width = keys.count(",") + 1
        pictures, cost = width + 2, width + 3  # 1-based positions in the SELECT list
        sql = (
            f"SELECT {keys}, {_TOTALS} FROM generations WHERE day BETWEEN ? AND ? "
            f"GROUP BY {keys} ORDER BY {pictures} DESC, {cost} DESC, {keys}"
        )
        args: tuple[Any, ...] = (first_day, last_day)
        if limit is not None:
            sql += " LIMIT ?"
            args += (max(0, limit),)
        return [tuple(r) for r in self._db().execute(sql, args).fetchall()]

    def _per_day_blocking(self, days: tuple[str, ...]) -> list[DayTotals]:
        if not days:
            return []
        rows = self._db().execute(
            f"SELECT day, {_TOTALS} FROM generations WHERE day BETWEEN ? AND ? GROUP BY day",
            (min(days), max(days)),
        )
        found = {r[0]: Totals.of(r[1:]) for r in rows.fetchall()}
        return [DayTotals(day, found.get(day, Totals())) for day in days]

    def _latest_blocking(self, limit: int) -> list[LedgerEntry]:
        rows = self._db().execute(
            "SELECT ts, platform, user_id, group_id, model, pictures, size, prompt_tokens, "
            "completion_tokens, cost, key_mask, files, outcome, generation_id, cost_status "
            "FROM generations ORDER BY ts DESC, id DESC LIMIT ?",
            (max(0, limit),),
        )
        return [
            LedgerEntry(
                at=r[0],
                platform=r[1],
                user_id=r[2],
                group_id=r[3],
                model=r[4],
                pictures=r[5],
                size=r[6],
                prompt_tokens=r[7],
                completion_tokens=r[8],
                cost=r[9],
                key_mask=r[10],
                files=tuple(f for f in r[11].split("\n") if f),
                outcome=r[12],
                generation_id=r[13],
                cost_status=r[14],
            )
            for r in rows.fetchall()
        ]
