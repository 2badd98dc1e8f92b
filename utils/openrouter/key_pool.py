"""The API keys of one plugin instance, shared by all its requests.

- Each request gets the least recently used key that can take it, so load spreads evenly.
- A key whose health is not known yet (fresh, or back from a cooldown) carries one request at a
  time, like a half-open circuit breaker: when it is still rate-limited, only that one request
  learns it, instead of every request that arrives meanwhile. Once it answers, it takes any load.
- 429 puts a key on cooldown for the server's Retry-After, else RATE_LIMIT_COOLDOWN seconds;
  402 for CREDITS_COOLDOWN seconds; 401 makes it invalid until the key list changes (the plugin
  then builds a new pool) or an admin resets it (`reset()`).
- A key out of credits is asked about again (`ensure_usable()` with a CreditCheck: the service's
  GET /key) when a request finds no other key, at most every CREDIT_RECHECK_INTERVAL seconds
  and one question at a time: credit bought meanwhile brings it back without a reload.
- Keys never leave this module unmasked except inside a lease, for the Authorization header.

All state changes happen between awaits on the event loop, so no lock is needed; waiting
requests are woken through an asyncio.Event replaced at every change.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field

from astrbot.api import logger

from ..core.clock import SYSTEM_CLOCK, Clock, Deadline
from ..core.errors import (
    AllKeysCoolingDownError,
    DeadlineExceededError,
    InvalidKeyError,
    NoApiKeyError,
    OutOfCreditsError,
    UnknownKeyError,
    UpstreamError,
)
from ..core.keys import mask_key
from .retry_policy import MAX_RETRY_AFTER, KeyOutcome
from .usage import KeyInfo

RATE_LIMIT_COOLDOWN = 60.0  # OpenRouter's free tier counts requests per minute
CREDITS_COOLDOWN = 600.0  # the longest a key out of credits waits when it cannot be re-checked
CREDIT_RECHECK_INTERVAL = 60.0  # at most one GET /key per key out of credits in this time
MIN_COOLDOWN = 1.0
RESET_BY_ADMIN = "reset"  # a key's last_error after an admin's reset, until it is used again
MIN_TAIL = 4  # a key named by its last characters: at least as many as its masked form shows

# Asks the service about a key (the key, a timeout in seconds): its GET /key answer, or None
# when the service could not tell (no such endpoint, timeout, ...).
CreditCheck = Callable[[str, float], Awaitable[KeyInfo | None]]
CREDIT_CHECK_TIMEOUT = 5.0


class KeyState(enum.Enum):
    OK = "ok"
    UNTESTED = "untested"
    COOLING_DOWN = "cooling down"
    OUT_OF_CREDITS = "out of credits"
    INVALID = "invalid"


@dataclass
class _Slot:
    key: str
    index: int
    healthy: bool = False
    invalid: bool = False
    blocked_until: float = 0.0  # monotonic
    blocked_for_credits: bool = False
    credit_check_at: float = 0.0  # monotonic: when an out-of-credits key may be asked about
    credit_check: asyncio.Task[None] | None = None  # the question being asked now
    in_flight: int = 0
    last_ticket: int = 0
    successes: int = 0
    failures: int = 0
    last_error: str = ""

    @property
    def masked(self) -> str:
        return mask_key(self.key)

    def __repr__(self) -> str:  # loguru prints local variables in tracebacks: never the key
        return (
            f"_Slot({self.masked}, healthy={self.healthy}, invalid={self.invalid}, "
            f"blocked_until={self.blocked_until}, in_flight={self.in_flight})"
        )

    def blocked(self, now: float) -> bool:
        return self.blocked_until > now

    def free_at(self) -> float:
        """When this blocked key may serve again (monotonic): the end of its cooldown, or for a
        key out of credits the next question to the service, if that comes first."""
        if self.blocked_for_credits:
            return min(self.blocked_until, self.credit_check_at)
        return self.blocked_until

    def unblock(self) -> None:
        self.blocked_until = 0.0
        self.blocked_for_credits = False
        self.credit_check_at = 0.0
        self.healthy = False  # one probe request first

    def ready(self, now: float) -> bool:
        if self.invalid or self.blocked(now):
            return False
        return self.healthy or self.in_flight == 0


@dataclass
class KeyLease:
    """The right to send one request with `key`; give it back with KeyPool.release()."""

    key: str
    masked: str
    _slot: _Slot = field(repr=False)
    released: bool = False

    def __repr__(self) -> str:  # never print the key
        return f"KeyLease({self.masked})"


@dataclass(frozen=True)
class KeyStatus:
    """One row of the pool status shown to admins; holds the masked key only."""

    masked: str
    state: KeyState
    until: float | None  # wall-clock epoch seconds when a cooldown ends
    successes: int
    failures: int
    in_flight: int
    last_error: str


class KeyPool:
    def __init__(
        self,
        keys: Iterable[str],
        *,
        clock: Clock = SYSTEM_CLOCK,
        rate_limit_cooldown: float = RATE_LIMIT_COOLDOWN,
        credits_cooldown: float = CREDITS_COOLDOWN,
    ) -> None:
        self._slots = [_Slot(key, i) for i, key in enumerate(dict.fromkeys(keys))]
        self.clock = clock
        self.rate_limit_cooldown = rate_limit_cooldown
        self.credits_cooldown = credits_cooldown
        self._tickets = 0
        self._changed = asyncio.Event()

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(s.key for s in self._slots)

    def usable_count(self) -> int:
        """Keys not known to be invalid: how many a new run may try."""
        return sum(not s.invalid for s in self._slots)

    def __repr__(self) -> str:
        return f"KeyPool({', '.join(s.masked for s in self._slots)})"

    # --- taking and giving back keys ---------------------------------------------------------

    async def ensure_usable(
        self, max_wait: float | None = None, credit_check: CreditCheck | None = None
    ) -> None:
        """check_usable(), after asking the service about keys out of credits whose question
        is due, when no other key could serve (a key with credit again is back at once)."""
        if credit_check is not None:
            now = self.clock.monotonic()
            usable = [s for s in self._slots if not s.invalid]
            if usable and all(s.blocked(now) for s in usable):
                due = [s for s in usable if s.blocked_for_credits and s.credit_check_at <= now]
                await asyncio.gather(*(self._recheck_credit(s, credit_check) for s in due))
        self.check_usable(max_wait)

    def check_usable(self, max_wait: float | None = None) -> None:
        """Raise NoApiKeyError / InvalidKeyError when no key can be tried at all: the one check
        a request makes before it sends anything. With `max_wait`, also raise what acquire()
        would (AllKeysCoolingDownError, OutOfCreditsError) when every usable key is blocked for
        longer than that: such a request cannot start either."""
        if all(slot.invalid for slot in self._slots):
            raise self._no_candidate_error(())
        if max_wait is None:
            return
        now = self.clock.monotonic()
        usable = [s for s in self._slots if not s.invalid]
        if all(s.blocked(now) for s in usable):
            wait = min(s.blocked_until for s in usable) - now
            if wait > max_wait:
                raise self._cooling_down_error(usable)

    async def acquire(
        self,
        deadline: Deadline,
        exclude: Collection[str] = (),
        max_wait: float = 10.0,
        reserve: float = 0.0,
        prefer: str | None = None,
    ) -> KeyLease:
        """Lease the best key not in `exclude`, waiting for one if that is worth it.

        `prefer` (a run's current key after a transient failure) is taken when it is ready.

        Raises AllKeysCoolingDownError when every candidate is cooling down for longer than
        `max_wait` (or than the deadline allows, keeping `reserve` seconds for the try);
        InvalidKeyError / OutOfCreditsError when no candidate can be used at all;
        DeadlineExceededError when the deadline passes while waiting.
        """
        while True:
            now = self.clock.monotonic()
            candidates = [s for s in self._slots if s.key not in exclude and not s.invalid]
            if not candidates:
                raise self._no_candidate_error(exclude)
            ready = [s for s in candidates if s.ready(now)]
            if ready:
                for slot in ready:
                    if slot.key == prefer:
                        return self._lease(slot)
                # Least recently leased first: spreads load, and gives a key back from its
                # cooldown its single probe soon.
                return self._lease(min(ready, key=lambda s: s.last_ticket))
            blocked = [s for s in candidates if s.blocked(now)]
            wake_at = min((s.blocked_until for s in blocked), default=None)
            if len(blocked) == len(candidates):
                assert wake_at is not None
                wait = wake_at - now
                if wait > max_wait or not deadline.fits(wait, reserve):
                    raise self._cooling_down_error(blocked)
            # Otherwise a key is busy with its first request: wait for it to report back.
            timeout = deadline.remaining()
            if wake_at is not None:
                timeout = min(timeout, wake_at - now)
            if deadline.expired():
                raise DeadlineExceededError(
                    "deadline passed while waiting for a free key", deadline.budget
                )
            await self._wait_for_change(timeout)

    def release(
        self, lease: KeyLease, outcome: KeyOutcome | None, retry_after: float | None = None
    ) -> None:
        """Give a key back with what its request taught us (None: nothing, e.g. cancelled)."""
        if lease.released:
            return
        lease.released = True
        slot = lease._slot
        slot.in_flight -= 1
        if outcome is KeyOutcome.SUCCESS:
            if not slot.healthy and slot.failures:
                logger.info(f"API key {slot.masked} answers again")
            slot.successes += 1
            slot.healthy = True
        elif outcome is not None:
            slot.failures += 1
            slot.last_error = outcome.value
            if outcome is KeyOutcome.RATE_LIMITED:
                wait = self.rate_limit_cooldown if retry_after is None else retry_after
                self._block(slot, wait, credits=False)
            elif outcome is KeyOutcome.NO_CREDITS:
                self._block(slot, self.credits_cooldown, credits=True)
            elif outcome is KeyOutcome.INVALID:
                if not slot.invalid:
                    logger.warning(f"API key {slot.masked} was rejected (401): not used again")
                slot.invalid = True
                slot.healthy = False
        self._notify()

    # --- keys out of credits -------------------------------------------------------------------

    async def _recheck_credit(self, slot: _Slot, check: CreditCheck) -> None:
        """One question about `slot` at a time: concurrent requests wait for the same answer."""
        if slot.credit_check is None or slot.credit_check.done():
            slot.credit_check = asyncio.ensure_future(self._ask_about_credit(slot, check))
        # Waited for, not awaited: an admin's reset cancels the question (the key is free
        # again), which must not cancel the requests waiting for its answer. A waiter that is
        # itself cancelled still is, and the question goes on for the others.
        await asyncio.wait([slot.credit_check])

    async def _ask_about_credit(self, slot: _Slot, check: CreditCheck) -> None:
        slot.credit_check_at = self.clock.monotonic() + CREDIT_RECHECK_INTERVAL
        try:
            info = await check(slot.key, CREDIT_CHECK_TIMEOUT)
        except Exception as exc:  # the check is a nicety: the cooldown still ends on its own
            logger.warning(f"API key {slot.masked}: credit check failed: {type(exc).__name__}")
            return
        if not slot.blocked_for_credits:  # reset or rebuilt meanwhile
            return
        if info is None:
            logger.info(f"API key {slot.masked} out of credits: the service cannot tell more")
            return
        remaining = info.limit_remaining
        if remaining is not None and remaining <= 0:
            logger.info(f"API key {slot.masked} still out of credits (limit_remaining 0)")
            return
        # Credit left on the key's own limit; or no limit of its own (limit_remaining null):
        # then the 402 came from the account's balance, which GET /key does not show, and one
        # request tells (a 402 costs nothing).
        shown = "no limit of its own" if remaining is None else f"limit_remaining {remaining:g}"
        logger.info(f"API key {slot.masked} back from out of credits ({shown}): trying it again")
        slot.unblock()
        self._notify()

    def reset(self, tail: str = "") -> list[str]:
        """An admin's fresh start for the keys ending in `tail` (all keys when empty): cooldowns,
        out of credits and invalid are forgotten; each key takes one probe request first. The
        masked keys reset; UnknownKeyError when `tail` names no key or several."""
        slots = self._named(tail)
        for slot in slots:
            slot.unblock()
            slot.invalid = False
            slot.last_error = RESET_BY_ADMIN
            if slot.credit_check is not None:
                slot.credit_check.cancel()
                slot.credit_check = None
        self._notify()
        masked = [s.masked for s in slots]
        logger.info(f"gemini-pic-gen: key state reset by an admin: {', '.join(masked) or 'none'}")
        return masked

    def _named(self, tail: str) -> list[_Slot]:
        """The keys an admin means by `tail`: its last characters (as in `sk-or-…abcd`)."""
        text = tail.strip()
        for mark in ("…", "..."):
            text = text.rsplit(mark, 1)[-1]
        text = text.strip()
        if not tail.strip():
            return list(self._slots)
        known = tuple(s.masked for s in self._slots)
        matches = [s for s in self._slots if len(text) >= MIN_TAIL and s.key.endswith(text)]
        if len(matches) != 1:
            raise UnknownKeyError(
                f"{len(matches)} key(s) end in the {len(text)} characters given",
                tail=text[-MIN_TAIL:] if len(text) > MIN_TAIL else text,
                matches=tuple(s.masked for s in matches),
                known=known,
            )
        return matches

    # --- what admins see ------------------------------------------------------------------------

    def snapshot(self) -> list[KeyStatus]:
        now, wall = self.clock.monotonic(), self.clock.wall()
        rows = []
        for s in self._slots:
            until: float | None = None
            if s.invalid:
                state = KeyState.INVALID
            elif s.blocked(now):
                state = KeyState.OUT_OF_CREDITS if s.blocked_for_credits else KeyState.COOLING_DOWN
                until = wall + max(0.0, s.free_at() - now)
            else:
                state = KeyState.OK if s.healthy else KeyState.UNTESTED
            rows.append(
                KeyStatus(
                    s.masked, state, until, s.successes, s.failures, s.in_flight, s.last_error
                )
            )
        return rows

    # --- internals ------------------------------------------------------------------------------

    def _lease(self, slot: _Slot) -> KeyLease:
        self._tickets += 1
        slot.last_ticket = self._tickets
        slot.in_flight += 1
        return KeyLease(slot.key, slot.masked, slot)

    def _block(self, slot: _Slot, seconds: float, *, credits: bool) -> None:
        seconds = min(max(MIN_COOLDOWN, seconds), MAX_RETRY_AFTER)
        until = self.clock.monotonic() + seconds
        if until > slot.blocked_until:
            slot.blocked_until = until
            slot.blocked_for_credits = credits
        if credits:
            slot.credit_check_at = self.clock.monotonic() + min(seconds, CREDIT_RECHECK_INTERVAL)
        slot.healthy = False  # after the cooldown, one probe request first
        reason = "out of credits (402)" if credits else "rate limited (429)"
        logger.warning(f"API key {slot.masked} {reason}: cooling down for {seconds:.0f} s")

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_for_change(self, timeout: float) -> None:
        changed = asyncio.ensure_future(self._changed.wait())
        timer = asyncio.ensure_future(self.clock.sleep(max(0.0, timeout)))
        try:
            await asyncio.wait({changed, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            timer.cancel()

    def _no_candidate_error(self, exclude: Collection[str]) -> Exception:
        """Why no key is left, told by the most useful cause: a key that is only cooling down
        (the user can come back at a known time) beats one out of credits, which beats
        invalid keys (the admin must act)."""
        if not self._slots:
            return NoApiKeyError("the key pool is empty")
        now = self.clock.monotonic()
        blocked = [s for s in self._slots if not s.invalid and s.blocked(now)]
        if blocked:
            return self._cooling_down_error(blocked)
        if all(s.invalid for s in self._slots):
            count = len(self._slots)
            return InvalidKeyError(f"all {count} key(s) were rejected (401)", 401)
        return UpstreamError("every key has used up its tries for this request")

    def _cooling_down_error(self, blocked: list[_Slot]) -> Exception:
        """Why none of `blocked` can serve now, and when the first one may again."""
        now = self.clock.monotonic()
        wait = max(0.0, min(s.free_at() for s in blocked) - now)
        if all(s.blocked_for_credits for s in blocked):
            return OutOfCreditsError(
                f"all {len(blocked)} usable key(s) are out of credits, "
                f"asked about again in {wait:.0f} s",
                402,
                retry_after=wait,
                retry_at=self.clock.wall() + wait,
            )
        cooling = sum(not s.blocked_for_credits for s in blocked)
        unusable = sum(s.invalid or (s.blocked(now) and s.blocked_for_credits) for s in self._slots)
        retry_at = self.clock.wall() + wait
        return AllKeysCoolingDownError(
            f"{cooling} key(s) cooling down, first free in {wait:.0f} s; "
            f"{unusable} of {len(self._slots)} invalid or out of credits",
            retry_after=wait,
            retry_at=retry_at,
            key_count=len(self._slots),
            cooling=cooling,
            unusable=unusable,
        )

    def describe(self) -> str:
        """Every key's state on one line, masked: for the log when a request fails."""
        now = self.clock.monotonic()
        parts = []
        for s in self._slots:
            if s.invalid:
                state = "invalid (401)"
            elif s.blocked(now):
                reason = "out of credits (402)" if s.blocked_for_credits else "rate limited (429)"
                state = f"{reason}, free in {s.blocked_until - now:.0f} s"
            else:
                state = "ok" if s.healthy else "untested"
            busy = f", {s.in_flight} in flight" if s.in_flight else ""
            parts.append(f"{s.masked} {state}{busy}")
        return "; ".join(parts) or "no keys"
