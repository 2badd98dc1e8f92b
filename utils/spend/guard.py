"""Daily caps: refuse a request before any upstream call once today's count or spend reached one.

Counts (pictures) are what the ledger recorded today plus the requests in flight, each holding
one picture from `reserve()` until `commit()` records it or `release()` drops it; so a burst of
concurrent requests at a count cap overshoots it by at most the extra pictures an answer may
carry. Spend caps look at the recorded cost, and a generation without a reported cost counts as a
picture but never as money. When the caller knows what a request will cost before it is sent (an
estimate from the Image API's prices, utils/openrouter/image_pricing.py), it passes it to
`reserve()`: a request whose estimate would take today's spend past a budget is refused, and the
estimate is held like the picture until the request ends, so concurrent ones cannot pass it
together.

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
        expected USD when known), or raise DailyCapReached."""
        exempt = who.is_admin and not policy.caps_apply_to_admins
        if exempt or not policy.any_cap or self.ledger is None:
            # Still held: an admin's pictures count for the group too.
            return self._hold(who, estimate)
        async with self._lock:
            now = self._clock.wall()
            try:
                today = await self.ledger.scope_totals(
                    local_day(now), who.platform, who.user_id, who.group_id
                )
            except LedgerError as exc:
                # An unreadable ledger records nothing, so no cap can be proven reached.
                logger.error(f"gemini-pic-gen: daily caps not checked: {exc.detail}")
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
