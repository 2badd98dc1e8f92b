"""The spend ledger: one row per finished generation, in SQLite under the plugin's data directory.

The file outlives reloads and restarts (AstrBot keeps `data/plugin_data/<plugin>/` across both);
rows older than the retention (30 local days by default) are pruned on open and then hourly.
Every database call runs on the ledger's own single worker thread: an SQLite connection belongs
to the thread that made it, and one thread also keeps writes in order. SQLite's transactions
mean a crash never leaves a half-written row behind.
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

from ..core.clock import SYSTEM_CLOCK, Clock
from ..core.errors import LedgerError
from ..core.settings import DEFAULT_LEDGER_RETENTION_DAYS
from .days import last_days, local_day

T = TypeVar("T")
LEDGER_FILE = "spend_ledger.sqlite3"
SCHEMA_VERSION = 1
PRUNE_INTERVAL = 3600.0
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
    files TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS generations_day ON generations (day);
"""
# Unknown costs count as 0 in the sum and are counted separately, so a total can say "unknown".
_TOTALS = (
    "COUNT(*), COALESCE(SUM(pictures), 0), COALESCE(SUM(cost), 0.0), COALESCE(SUM(cost IS NULL), 0)"
)


@dataclass(frozen=True)
class LedgerEntry:
    """One finished generation. `group_id` is '' in private chats; `cost` None = not reported."""

    at: float  # epoch seconds
    platform: str
    user_id: str
    group_id: str
    model: str
    pictures: int
    size: str = ""  # the requested image size ('1K', '2K', '4K'); '' = the model's default
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None
    key_mask: str = ""
    files: tuple[str, ...] = ()  # base names of the stored images, for the dashboard

    @property
    def day(self) -> str:
        return local_day(self.at)


@dataclass(frozen=True)
class Totals:
    generations: int = 0
    pictures: int = 0
    cost: float = 0.0  # USD, the sum of the reported costs
    unknown: int = 0  # generations whose cost was not reported

    @property
    def cost_known(self) -> bool:
        """False when some generation's cost is missing from `cost`."""
        return self.unknown == 0

    @classmethod
    def of(cls, row: Sequence[Any]) -> Totals:
        return cls(int(row[0]), int(row[1]), float(row[2]), int(row[3]))


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
    """A range of days: the totals and the biggest groups, users and models."""

    first_day: str
    last_day: str
    totals: Totals
    groups: tuple[GroupTotals, ...] = ()
    users: tuple[UserTotals, ...] = ()
    models: tuple[ModelTotals, ...] = ()


@dataclass
class _State:
    connection: sqlite3.Connection | None = None
    last_prune: float = field(default=float("-inf"))


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(str(path), timeout=5.0)
    try:
        # WAL with synchronous=NORMAL: a row is a short append, not an fsync per picture (a crash
        # may lose the last rows, never corrupt the file); readers never wait for the writer.
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.executescript(_SCHEMA)
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.commit()
    except BaseException:
        connection.close()
        raise
    return connection


class Ledger:
    """The ledger file in `directory`. `open()` before use, `close()` on unload."""

    def __init__(
        self,
        directory: Path,
        *,
        retention_days: int = DEFAULT_LEDGER_RETENTION_DAYS,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.path = Path(directory) / LEDGER_FILE
        self.retention_days = max(1, retention_days)
        self._clock = clock
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

    async def record(self, entry: LedgerEntry) -> None:
        await self._call(self._record_blocking, entry)

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
            raise LedgerError("the ledger is not open")
        return self._state.connection

    def _open_blocking(self) -> None:
        if self._state.connection is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._state.connection = _connect(self.path)
        except sqlite3.DatabaseError as exc:
            # Not a database (or damaged beyond use): keep it for inspection, start a new one.
            kept = self.path.with_name(f"{self.path.name}.broken-{int(time.time())}")
            self.path.replace(kept)
            logger.warning(
                f"gemini-pic-gen: spend ledger unreadable ({exc}); moved to {kept.name}, "
                "starting a new one"
            )
            self._state.connection = _connect(self.path)

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

    def _record_blocking(self, entry: LedgerEntry) -> None:
        with self._db() as db:
            db.execute(
                "INSERT INTO generations (ts, day, platform, group_id, user_id, model, size, "
                "pictures, prompt_tokens, completion_tokens, cost, key_mask, files) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                ),
            )
        if entry.at - self._state.last_prune >= PRUNE_INTERVAL:
            self._prune_blocking(entry.at)

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
        return Summary(first_day, last_day, totals, groups, users, models)

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
            "completion_tokens, cost, key_mask, files FROM generations "
            "ORDER BY ts DESC, id DESC LIMIT ?",
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
            )
            for r in rows.fetchall()
        ]
