"""Daily caps: refuse a request before any upstream call once today's count or spend reached one.

Counts (pictures) are what the ledger recorded today plus the requests in flight, each holding
one picture from `reserve()` until `commit()` records its answer or `release()` drops it; so a
burst of concurrent requests at a count cap overshoots it by at most the extra pictures an
answer may carry. Spend caps look at the recorded cost of every billed answer, pictures or not
(a refusal is billed like a picture); an answer whose cost is not known (yet: it may be looked
up afterwards) counts as nothing until it is. When the caller knows what a request will cost
before it is sent (an estimate from the Image API's prices, utils/openrouter/image_pricing.py),
it passes it to `reserve()`: a request whose estimate would take today's spend past a budget is
refused, and the estimate is held like the picture until the request ends, so concurrent ones
cannot pass it together.

Reading today's totals and taking the hold happen under one lock, and so do recording and
dropping the hold, so no request can see a total that misses both an answer's row and its hold.
A commit runs to its end even when the request is cancelled meanwhile (its answer is paid for).

When the ledger cannot be read or written: with a money cap set, requests are refused (fail
closed: a cap that cannot be checked must not be passed), every time with an error in the log;
without one, they go on (the count caps are not checked) and the log says so. A row that could
not be written is kept in memory and written before the next one; `mark()` reaches it there too.
At most MAX_UNRECORDED rows wait so: in a longer outage the oldest go, each with an error in the
log.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field, replace
from itertools import count
from typing import Protocol

from astrbot.api import logger

from ..core.charges import Charge
from ..core.clock import SYSTEM_CLOCK, Clock
from ..core.errors import DailyCapReached, LedgerError, LedgerUnavailableError
from ..core.settings import SpendPolicy
from .days import local_day, next_midnight
from .ledger import COST_PENDING, Ledger, LedgerEntry, ScopeTotals

# Rows kept in memory while the ledger cannot be written (a few hundred bytes each).
MAX_UNRECORDED = 2000


class Spender(Protocol):
    """Who asks (utils/chat/limits.Requester has these)."""

    @property
    def platform(self) -> str: ...

    @property
    def user_id(self) -> str: ...

    @property
    def group_id(self) -> str: ...

    @property
    def is_admin(self) -> bool: ...


def _user_key(who: Spender) -> str:
    return f"{who.platform}:user:{who.user_id}"


def _group_key(who: Spender) -> str:
    return f"{who.platform}:group:{who.group_id}" if who.group_id else ""


class CostLookup(Protocol):
    """Looks up the cost of a recorded answer that reported none (spend/lookups.py)."""

    def schedule(self, row_id: int, generation_id: str, key_mask: str) -> None: ...


def record_of(
    who: Spender, charge: Charge, at: float, *, size: str = "", files: tuple[str, ...] = ()
) -> LedgerEntry:
    """The ledger row of a billed answer; `files` are the pictures stored of it."""
    usage = charge.usage
    return LedgerEntry(
        at=at,
        platform=who.platform,
        user_id=who.user_id,
        group_id=who.group_id,
        model=charge.model,
        pictures=len(files),
        size=size,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        cost=charge.cost,
        key_mask=charge.key_mask,
        files=files,
        outcome=charge.outcome,
        generation_id=charge.generation_id,
    )


@dataclass(frozen=True)
class Held:
    """What the requests in flight hold: pictures per scope, estimated USD per scope."""

    user_pictures: int = 0
    group_pictures: int = 0
    user_cost: float = 0.0
    group_cost: float = 0.0
    bot_cost: float = 0.0


def check_caps(
    who: Spender,
    policy: SpendPolicy,
    today: ScopeTotals,
    held: Held,
    now: float,
    estimate: float | None = None,
) -> None:
    """Raise DailyCapReached for the first cap `who` has reached, or that this request's
    `estimate` (USD) would pass; narrowest scope first."""
    resets = next_midnight(now)
    user_pictures = today.user.pictures + held.user_pictures
    group_pictures = today.group.pictures + held.group_pictures
    checks: list[tuple[str, float, float, bool]] = [
        (DailyCapReached.USER_COUNT, policy.user_daily_limit, user_pictures, False),
        (
            DailyCapReached.USER_BUDGET,
            policy.user_daily_budget_usd,
            today.user.cost + held.user_cost,
            True,
        ),
    ]
    if who.group_id:
        checks += [
            (DailyCapReached.GROUP_COUNT, policy.group_daily_limit, group_pictures, False),
            (
                DailyCapReached.GROUP_BUDGET,
                policy.group_daily_budget_usd,
                today.group.cost + held.group_cost,
                True,
            ),
        ]
    bot = (DailyCapReached.BOT_BUDGET, policy.daily_budget_usd, today.bot.cost + held.bot_cost)
    checks.append((*bot, True))
    for cap, limit, used, money in checks:
        if limit <= 0:
            continue
        if used >= limit:
            raise DailyCapReached(
                f"{cap} {limit:g} reached for {_user_key(who)} (used {used:g})",
                cap,
                limit,
                used,
                resets,
            )
        if money and estimate is not None and used + estimate > limit:
            raise DailyCapReached(
                f"{cap} {limit:g} would be passed for {_user_key(who)} "
                f"(used {used:g}, this request about {estimate:g})",
                cap,
                limit,
                used,
                resets,
                estimate,
            )


@dataclass(eq=False)
class Reservation:
    """One request's hold on a picture of today's counts. Commit or release it exactly once
    (both are idempotent, so a `finally: release()` after a commit is harmless)."""

    guard: SpendGuard
    user_key: str
    group_key: str
    ident: int
    done: bool = field(default=False)
    estimate: float = 0.0  # USD this request is expected to cost (0: not known)
    row_id: int | None = None  # its answer's ledger row, once written

    async def commit(self, entry: LedgerEntry) -> int | None:
        """Record the billed answer and drop the hold; the row's id (None: not written). Runs to
        its end even if the caller is cancelled meanwhile. A ledger failure is logged, never
        raised: a picture that is made must still reach the user."""
        if self.done:
            return None
        self.done = True  # from now on the commit drops the hold, once the row is written
        return await self.guard.commit(self, entry)

    def release(self) -> None:
        """The request ended without a billed answer: drop the hold."""
        if self.done:
            return
        self.done = True
        self.guard._drop(self)


@dataclass(eq=False)
class _Unrecorded:
    """A row the ledger failed to take, waiting in memory; `mark()` may still change it."""

    reservation: Reservation
    entry: LedgerEntry


class SpendGuard:
    """The daily caps of one plugin instance, over its ledger (None: no caps, no records)."""

    def __init__(
        self,
        ledger: Ledger | None,
        clock: Clock = SYSTEM_CLOCK,
        lookups: CostLookup | None = None,
        *,
        max_unrecorded: int = MAX_UNRECORDED,
    ) -> None:
        self.ledger = ledger
        self.lookups = lookups
        self._clock = clock
        self._lock = asyncio.Lock()
        self._holds: dict[int, Reservation] = {}
        self._ids = count(1)
        # Rows the ledger failed to take, written before the next one (in order).
        self._unrecorded: deque[_Unrecorded] = deque()
        self._max_unrecorded = max(1, max_unrecorded)
        self._commits: set[asyncio.Task[int | None]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._holds)

    @property
    def unrecorded(self) -> int:
        """Rows waiting in memory for the ledger to work again."""
        return len(self._unrecorded)

    def held(self, key: str) -> int:
        if not key:
            return 0
        return sum(1 for r in self._holds.values() if key in (r.user_key, r.group_key))

    def _held_cost(self, key: str | None) -> float:
        """Estimates held in a scope (None: every hold; '': none)."""
        if key == "":
            return 0.0
        return sum(
            r.estimate
            for r in self._holds.values()
            if key is None or key in (r.user_key, r.group_key)
        )

    def _held_by(self, who: Spender) -> Held:
        user, group = _user_key(who), _group_key(who)
        return Held(
            self.held(user),
            self.held(group),
            self._held_cost(user),
            self._held_cost(group),
            self._held_cost(None),
        )

    async def reserve(
        self, who: Spender, policy: SpendPolicy, estimate: float | None = None
    ) -> Reservation:
        """Check today's caps for `who` and hold one picture (and `estimate`, the request's
        expected USD when known), or raise DailyCapReached (or LedgerUnavailableError: a
        money cap is set and the ledger cannot be used)."""
        exempt = who.is_admin and not policy.caps_apply_to_admins
        if exempt or not policy.any_cap or self.ledger is None:
            # Still held: an admin's pictures count for the group too.
            return self._hold(who, estimate)
        async with self._lock:
            now = self._clock.wall()
            try:
                await self._write_unrecorded()
                today = await self.ledger.scope_totals(
                    local_day(now), who.platform, who.user_id, who.group_id
                )
            except LedgerError as exc:
                if policy.any_budget:
                    logger.error(
                        "gemini-pic-gen: REQUEST REFUSED: a daily spend cap is set and the spend "
                        f"ledger cannot be used, so the cap cannot be checked: {exc.detail}"
                    )
                    raise LedgerUnavailableError(f"spend caps unverifiable: {exc.detail}") from exc
                logger.error(
                    "gemini-pic-gen: daily picture caps not checked (the spend ledger cannot be "
                    f"used; no spend cap is set, so the request goes on): {exc.detail}"
                )
                return self._hold(who, estimate)
            check_caps(who, policy, today, self._held_by(who), now, estimate)
            return self._hold(who, estimate)

    def _hold(self, who: Spender, estimate: float | None = None) -> Reservation:
        reservation = Reservation(
            self, _user_key(who), _group_key(who), next(self._ids), estimate=estimate or 0.0
        )
        self._holds[reservation.ident] = reservation
        return reservation

    def _drop(self, reservation: Reservation) -> None:
        self._holds.pop(reservation.ident, None)

    async def commit(self, reservation: Reservation, entry: LedgerEntry) -> int | None:
        """Reservation.commit(): the write runs as a task of its own, so that a cancellation of
        the caller neither loses the row nor keeps the hold."""
        task = asyncio.ensure_future(self._commit(reservation, entry))
        self._commits.add(task)
        task.add_done_callback(self._commits.discard)
        return await asyncio.shield(task)

    async def _commit(self, reservation: Reservation, entry: LedgerEntry) -> int | None:
        try:
            if self.ledger is None:
                return None
            async with self._lock:
                try:
                    await self._write_unrecorded()
                    row_id = await self._write(reservation, entry)
                except LedgerError as exc:
                    self._keep_unrecorded(_Unrecorded(reservation, entry))
                    logger.error(
                        f"gemini-pic-gen: SPEND NOT RECORDED ({entry.outcome}, cost "
                        f"{entry.cost}): {exc.detail}; kept in memory ({len(self._unrecorded)} "
                        "row(s)) until the ledger can be written again"
                    )
                    return None
        finally:
            self._drop(reservation)
        return row_id

    def _keep_unrecorded(self, waiting: _Unrecorded) -> None:
        """Keep a row for later; the oldest kept goes when there are too many."""
        while len(self._unrecorded) >= self._max_unrecorded:
            lost = self._unrecorded.popleft().entry
            logger.error(
                f"gemini-pic-gen: SPEND ROW LOST: more than {self._max_unrecorded} rows wait for "
                f"the ledger; dropped the oldest ({lost.outcome}, {lost.pictures} picture(s), "
                f"cost {lost.cost}, model {lost.model}, user {lost.platform}:{lost.user_id}, "
                f"at {lost.at:.0f})"
            )
        self._unrecorded.append(waiting)

    async def _write(self, reservation: Reservation, entry: LedgerEntry) -> int:
        assert self.ledger is not None
        row_id = await self.ledger.record(entry)
        reservation.row_id = row_id
        if entry.status == COST_PENDING and self.lookups is not None:
            self.lookups.schedule(row_id, entry.generation_id, entry.key_mask)
        return row_id

    async def _write_unrecorded(self) -> None:
        """The rows the ledger failed to take before, oldest first; raises LedgerError if it
        still cannot take them."""
        while self._unrecorded:
            waiting = self._unrecorded[0]
            await self._write(waiting.reservation, waiting.entry)
            self._unrecorded.popleft()
            logger.info("gemini-pic-gen: a spend row kept in memory is now recorded")

    async def mark(self, reservation: Reservation, outcome: str) -> None:
        """The committed answer of `reservation` turned out otherwise (its pictures could not
        be sent): its row says so, or the row still waiting in memory will."""
        if self.ledger is None:
            return
        async with self._lock:  # the waiting row is written (and gets its id) under the lock
            row_id = reservation.row_id
            if row_id is None:
                self._mark_unrecorded(reservation, outcome)
                return
        try:
            await self.ledger.set_outcome(row_id, outcome)
        except LedgerError as exc:
            logger.error(f"gemini-pic-gen: spend row {row_id} not marked {outcome}: {exc.detail}")

    def _mark_unrecorded(self, reservation: Reservation, outcome: str) -> None:
        for waiting in self._unrecorded:
            if waiting.reservation is reservation:
                waiting.entry = replace(waiting.entry, outcome=outcome)
                return
        logger.error(
            f"gemini-pic-gen: spend row not marked {outcome}: it was never recorded "
            "and is no longer kept in memory"
        )

    async def settle(self) -> None:
        """Wait for the commits still running (before the ledger closes)."""
        if self._commits:
            await asyncio.wait(set(self._commits))
