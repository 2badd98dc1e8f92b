"""When to retry a generation, on which key, and how long to wait first.

Pure classification functions decide what a failure means; `RetryPolicy.retrying()` builds the
tenacity loop that one generation runs in; `RetryRun` counts the tries of that generation.

The rules:
- rate limit (429), no credits (402), invalid key (401): this key is out for now; the key pool
  marks it and the next try goes to another key at once, without waiting. When every key is
  cooling down, the pool waits for the first one only if it is back within
  `max_cooldown_wait`; otherwise the run ends and tells when to try again;
- transient (timeout, 408, 5xx, an HTML or garbled error page, an error object inside a 200
  answer or its stream): wait 2 -> 4 -> 8 s, capped at 10 s, minus up to 20 % jitter (a
  Retry-After from the server wins), then try the same key again until its tries are used up,
  then the next key;
- a connection-level fault before any answer (refused, reset, connect timeout): the same
  waits on the same key, but never the next key: every key takes the same path;
- an answer that may have been billed (it carries a `charge`: a stream or body cut, too big
  or unreadable after it started, a refusal, a text-only answer, pictures that all failed
  validation), no answer at all within the first-byte deadline, and anything else (400, 403
  moderation, 404 model, our own bugs): stop at once. Another try could be billed as well: providers that cannot abort a
  stream (Google's among them) bill the cut one in full, and a relay that answers late bills
  the request it was still working on;
- each key gets at most `max_attempts_per_key` tries, so a run never makes more than
  keys x max_attempts_per_key tries (a key rejected with 401 gets no more in that run; keys
  already known invalid are not counted);
- a wait happens only if the run's deadline still holds it plus time for one more try.
"""

from __future__ import annotations

import enum
import math
import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from ..core.clock import SYSTEM_CLOCK, Clock, Deadline
from ..core.errors import (
    AllKeysCoolingDownError,
    DeadlineExceededError,
    InvalidKeyError,
    NoAnswerError,
    OutOfCreditsError,
    PicGenError,
    RateLimitedError,
    UnreachableError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from ..core.keys import mask_key

MAX_RETRY_AFTER = 24 * 3600.0


class Action(enum.Enum):
    SWITCH_KEY = "switch key"
    BACKOFF = "back off and retry"
    STOP = "stop"


class KeyOutcome(enum.Enum):
    """What one try tells the key pool about the key it used."""

    SUCCESS = "success"
    FAILURE = "failure"  # the try failed for a reason that says nothing bad about the key
    RATE_LIMITED = "rate limited"
    NO_CREDITS = "out of credits"
    INVALID = "invalid"


# --- pure functions -------------------------------------------------------------------------------


def classify(error: BaseException) -> Action:
    """What to do after a failed try."""
    if isinstance(error, AllKeysCoolingDownError):
        return Action.STOP  # raised by the pool itself: no key left to switch to
    if getattr(error, "charge", None) is not None or isinstance(error, NoAnswerError):
        return Action.STOP  # the answer may be billed: a second try could be billed too
    if isinstance(error, (RateLimitedError, OutOfCreditsError, InvalidKeyError)):
        return Action.SWITCH_KEY
    if isinstance(error, (UpstreamTimeoutError, UpstreamUnavailableError)):
        return Action.BACKOFF
    return Action.STOP


def key_outcome(error: BaseException | None) -> KeyOutcome:
    if error is None:
        return KeyOutcome.SUCCESS
    if isinstance(error, RateLimitedError):
        return KeyOutcome.RATE_LIMITED
    if isinstance(error, OutOfCreditsError):
        return KeyOutcome.NO_CREDITS
    if isinstance(error, InvalidKeyError):
        return KeyOutcome.INVALID
    return KeyOutcome.FAILURE


def retry_after_of(error: BaseException | None) -> float | None:
    value = getattr(error, "retry_after", None)
    return float(value) if isinstance(value, (int, float)) else None


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), if any.

    `now` is wall-clock epoch seconds, used for the date form.
    """
    value = headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


def backoff_delay(
    failures: int, *, base: float = 2.0, cap: float = 10.0, jitter: float = 0.2, draw: float = 0.0
) -> float:
    """Exponential backoff after the `failures`-th transient failure: base, 2 base, 4 base, ...

    Capped at `cap`; jitter takes off up to `jitter` of the delay (`draw` in [0, 1)) so that
    concurrent runs do not retry in lockstep, and never pushes a delay above the cap.
    """
    exponent = max(0, failures - 1)
    raw = cap if exponent >= 64 else min(cap, base * 2.0**exponent)
    return max(0.0, raw * (1.0 - jitter * min(max(draw, 0.0), 1.0)))


# --- one run ---------------------------------------------------------------------------------------


@dataclass
class RetryRun:
    """The tries of one generation: which keys were used how often, and the last failure."""

    key_count: int
    max_attempts_per_key: int
    deadline: Deadline
    tries: Counter[str] = field(default_factory=Counter)
    transient_failures: int = 0
    last_error: BaseException | None = None
    current_key: str | None = None
    rejected: set[str] = field(default_factory=set)  # keys that answered 401 in this run

    @property
    def max_total(self) -> int:
        return self.key_count * self.max_attempts_per_key

    @property
    def total(self) -> int:
        return sum(self.tries.values())

    def exhausted_keys(self) -> frozenset[str]:
        """Keys this run may not try again."""
        used_up = (k for k, n in self.tries.items() if n >= self.max_attempts_per_key)
        return frozenset(used_up).union(self.rejected)

    def began(self, key: str) -> None:
        self.tries[key] += 1
        self.current_key = key

    def failed(self, error: BaseException) -> Action:
        self.last_error = error
        action = classify(error)
        if action is Action.BACKOFF:
            self.transient_failures += 1
        if isinstance(error, InvalidKeyError) and self.current_key is not None:
            # A rejected key is out for the whole run: with the other keys used up, the run
            # ends with their failure (a rate limit, say), not with "invalid key".
            self.rejected.add(self.current_key)
        return action

    def __repr__(self) -> str:
        """The run with its keys masked: loguru prints local variables in tracebacks."""
        tries = {mask_key(key): count for key, count in self.tries.items()}
        current = mask_key(self.current_key) if self.current_key is not None else None
        rejected = sorted(mask_key(key) for key in self.rejected)
        last = type(self.last_error).__name__ if self.last_error is not None else None
        return (
            f"RetryRun(tries={tries}, current_key={current}, rejected={rejected}, "
            f"transient_failures={self.transient_failures}, last_error={last})"
        )

    def preferred_key(self) -> str | None:
        """After a transient failure the same key is tried again until its tries run out."""
        if self.last_error is not None and classify(self.last_error) is Action.BACKOFF:
            return self.current_key
        return None

    def may_retry(self, error: BaseException) -> bool:
        """Only the failure of a try (recorded by failed()) is retried: an error raised while
        choosing a key (every key cooling down, invalid or out of credits) ends the run."""
        if isinstance(error, UnreachableError) and self.current_key is not None:
            # The path, not the key, failed: the other keys would meet the same fault.
            return (
                error is self.last_error
                and self.tries[self.current_key] < self.max_attempts_per_key
            )
        return (
            error is self.last_error
            and classify(error) is not Action.STOP
            and self.total < self.max_total
            and len(self.exhausted_keys()) < self.key_count
        )


# --- the policy ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Tuning shared by all runs of a plugin instance. `clock` and `rng` are injectable."""

    base_delay: float = 2.0
    max_delay: float = 10.0
    jitter: float = 0.2
    # Waiting less than this for a rate-limited key beats telling the user to come back later.
    max_cooldown_wait: float = 10.0
    # A wait is skipped (and the run ends) unless this much time is left for the try after it.
    min_attempt_seconds: float = 5.0
    clock: Clock = field(default=SYSTEM_CLOCK, compare=False)
    rng: Callable[[], float] = field(default=random.random, compare=False)  # for jitter

    def start_run(self, key_count: int, max_attempts_per_key: int, deadline: Deadline) -> RetryRun:
        return RetryRun(max(1, key_count), max(1, max_attempts_per_key), deadline)

    def delay_after(self, run: RetryRun, error: BaseException) -> float:
        """Seconds to wait before the try that follows `error`."""
        if classify(error) is not Action.BACKOFF:
            return 0.0  # switching keys costs no wait; the pool waits itself if it must
        server_says = retry_after_of(error)
        if server_says is not None:
            return server_says
        return backoff_delay(
            run.transient_failures,
            base=self.base_delay,
            cap=self.max_delay,
            jitter=self.jitter,
            draw=self.rng(),
        )

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:  # switching keys goes on at once
            await self.clock.sleep(seconds)

    def retrying(
        self,
        run: RetryRun,
        before_sleep: Callable[[RetryCallState], Any] | None = None,
    ) -> AsyncRetrying:
        """The tenacity loop for one run. Each iteration is one try on one key."""

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            return self.delay_after(run, error) if error is not None else 0.0

        def stop(state: RetryCallState) -> bool:
            return not run.deadline.fits(state.upcoming_sleep, self.min_attempt_seconds)

        def give_up(state: RetryCallState) -> Any:
            last = state.outcome.exception() if state.outcome else None
            detail = (
                f"time budget of {run.deadline.budget:.0f} s cannot hold another try "
                f"(next wait {state.upcoming_sleep:.1f} s, {run.deadline.remaining():.1f} s left)"
            )
            if isinstance(last, PicGenError):
                detail += f"; last error: {type(last).__name__}: {last.detail}"
            raise DeadlineExceededError(
                detail,
                run.deadline.budget,
                last if isinstance(last, PicGenError) else None,
                state.upcoming_sleep,
            ) from last

        return AsyncRetrying(
            sleep=self._sleep,
            retry=retry_if_exception(run.may_retry),
            wait=wait,
            stop=stop,
            before_sleep=before_sleep,
            retry_error_callback=give_up,
            reraise=True,
        )
