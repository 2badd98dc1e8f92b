"""Daily caps: refuse a request before any upstream call once today's count or spend reached one.

Counts (pictures) are what the ledger recorded today plus the requests in flight, each holding
one picture from `reserve()` until `commit()` records it or `release()` drops it; so a burst of
concurrent requests at a count cap overshoots it by at most the extra pictures an answer may
carry. Spend caps look at the recorded cost only (what a request will cost is unknown until it
is done), and a generation without a reported cost counts as a picture but never as money.

Reading today's totals and taking the hold happen under one lock, and so do recording and
dropping the hold, so no request can see a total that misses both a finished generation's row
and its hold.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from itertools import count
from typing import TYPE_CHECKING, Protocol

from astrbot.api import logger

from ..core.clock import SYSTEM_CLOCK, Clock
from ..core.errors import DailyCapReached, LedgerError
from ..core.settings import SpendPolicy
from .days import local_day, next_midnight
from .ledger import Ledger, LedgerEntry, ScopeTotals

if TYPE_CHECKING:
    from ..ttp import GenerationResult


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


def record_of(who: Spender, result: GenerationResult, at: float, size: str = "") -> LedgerEntry:
    """The ledger row of a finished generation."""
    usage = result.usage
    return LedgerEntry(
        at=at,
        platform=who.platform,
        user_id=who.user_id,
        group_id=who.group_id,
        model=result.model,
        pictures=len(result.images),
        size=size,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        cost=usage.cost if usage else None,
        key_mask=result.key_mask,
        files=tuple(image.path.name for image in result.images),
    )


def check_caps(
    who: Spender,
    policy: SpendPolicy,
    today: ScopeTotals,
    held_user: int,
    held_group: int,
    now: float,
) -> None:
    """Raise DailyCapReached for the first cap `who` has reached; narrowest scope first."""
    resets = next_midnight(now)
    user_pictures = today.user.pictures + held_user
    group_pictures = today.group.pictures + held_group
    checks: list[tuple[str, float, float]] = [
        (DailyCapReached.USER_COUNT, policy.user_daily_limit, user_pictures),
        (DailyCapReached.USER_BUDGET, policy.user_daily_budget_usd, today.user.cost),
    ]
    if who.group_id:
        checks += [
            (DailyCapReached.GROUP_COUNT, policy.group_daily_limit, group_pictures),
            (DailyCapReached.GROUP_BUDGET, policy.group_daily_budget_usd, today.group.cost),
        ]
    checks.append((DailyCapReached.BOT_BUDGET, policy.daily_budget_usd, today.bot.cost))
    for cap, limit, used in checks:
        if limit > 0 and used >= limit:
            raise DailyCapReached(
                f"{cap} {limit:g} reached for {_user_key(who)} (used {used:g})",
                cap,
                limit,
                used,
                resets,
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

    async def commit(self, entry: LedgerEntry) -> None:
        """Record the finished generation and drop the hold. A ledger failure is logged, never
        raised: the picture is made and must still reach the user."""
        if self.done:
            return
        await self.guard._commit(self, entry)

    def release(self) -> None:
        """The request failed before it produced anything: drop the hold."""
        self.guard._drop(self)


class SpendGuard:
    """The daily caps of one plugin instance, over its ledger (None: no caps, no records)."""

    def __init__(self, ledger: Ledger | None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.ledger = ledger
        self._clock = clock
        self._lock = asyncio.Lock()
        self._holds: dict[int, Reservation] = {}
        self._ids = count(1)

    @property
    def in_flight(self) -> int:
        return len(self._holds)

    def held(self, key: str) -> int:
        if not key:
            return 0
        return sum(1 for r in self._holds.values() if key in (r.user_key, r.group_key))

    async def reserve(self, who: Spender, policy: SpendPolicy) -> Reservation:
        """Check today's caps for `who` and hold one picture, or raise DailyCapReached."""
        exempt = who.is_admin and not policy.caps_apply_to_admins
        if exempt or not policy.any_cap or self.ledger is None:
            return self._hold(who)  # still held: an admin's pictures count for the group too
        async with self._lock:
            now = self._clock.wall()
            try:
                today = await self.ledger.scope_totals(
                    local_day(now), who.platform, who.user_id, who.group_id
                )
            except LedgerError as exc:
                # An unreadable ledger records nothing, so no cap can be proven reached.
                logger.error(f"gemini-pic-gen: daily caps not checked: {exc.detail}")
                return self._hold(who)
            check_caps(
                who, policy, today, self.held(_user_key(who)), self.held(_group_key(who)), now
            )
            return self._hold(who)

    def _hold(self, who: Spender) -> Reservation:
        reservation = Reservation(self, _user_key(who), _group_key(who), next(self._ids))
        self._holds[reservation.ident] = reservation
        return reservation

    def _drop(self, reservation: Reservation) -> None:
        reservation.done = True
        self._holds.pop(reservation.ident, None)

    async def _commit(self, reservation: Reservation, entry: LedgerEntry) -> None:
        if self.ledger is None:
            self._drop(reservation)
            return
        async with self._lock:
            try:
                await self.ledger.record(entry)
            except LedgerError as exc:
                logger.error(f"gemini-pic-gen: generation not recorded: {exc.detail}")
            finally:
                self._drop(reservation)
