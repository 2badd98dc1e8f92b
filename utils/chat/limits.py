"""Who may draw and how often: group allow/deny lists and requests-per-minute limits.

State lives in one `RequestLimiter` per plugin instance. Every check-and-count runs without an
await in between, so concurrent requests on the event loop cannot both take the last slot.
The clock is injected (utils/core/clock.Clock) so tests can move time instead of sleeping.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from ..core.clock import SYSTEM_CLOCK, Clock
from ..core.errors import GroupNotAllowed, RateLimitHit
from ..core.settings import LimitPolicy

WINDOW_SECONDS = 60.0
# Above this many tracked senders/groups, idle ones are dropped (at most once per window).
_SWEEP_THRESHOLD = 2048


@dataclass(frozen=True)
class Requester:
    platform: str
    user_id: str
    group_id: str = ""  # empty in private chats
    is_admin: bool = False

    @classmethod
    def from_event(cls, event: Any) -> Requester:
        """Who sent an AstrMessageEvent (duck-typed: only its getters are used)."""
        return cls(
            platform=str(event.get_platform_id() or event.get_platform_name()),
            user_id=str(event.get_sender_id()),
            group_id=str(event.get_group_id() or ""),
            is_admin=bool(event.is_admin()),
        )

    @property
    def user_key(self) -> str:
        return f"{self.platform}:user:{self.user_id}"

    @property
    def group_key(self) -> str:
        return f"{self.platform}:group:{self.group_id}"


def check_group(requester: Requester, policy: LimitPolicy) -> None:
    """Raise GroupNotAllowed when the lists keep this group out. Private chats always pass."""
    group = requester.group_id
    if not group:
        return
    if group in policy.group_denylist:
        raise GroupNotAllowed(f"group {group} is on the deny list")
    if policy.group_allowlist and group not in policy.group_allowlist:
        raise GroupNotAllowed(f"group {group} is not on the allow list")


class RequestLimiter:
    """Sliding-window counters (a timestamp log per sender and per group)."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK, window: float = WINDOW_SECONDS) -> None:
        self._clock = clock
        self._window = window
        self._hits: dict[str, deque[float]] = {}
        self._next_sweep = float("-inf")

    def acquire(self, requester: Requester, policy: LimitPolicy) -> None:
        """Count one request, or raise RateLimitHit without counting anything.

        Admins are not limited. Both windows are checked before either is charged, so a request
        refused by the group limit does not use up the sender's own allowance.
        """
        if requester.is_admin:
            return
        now = self._clock.monotonic()
        if len(self._hits) > _SWEEP_THRESHOLD and now >= self._next_sweep:
            self._sweep(now)
            self._next_sweep = now + self._window
        charges: list[str] = []
        checks = [("user", requester.user_key, policy.user_per_minute)]
        if requester.group_id:
            checks.append(("group", requester.group_key, policy.group_per_minute))
        for scope, key, limit in checks:
            if limit <= 0:
                continue
            hits = self._recent(key, now)
            if len(hits) >= limit:
                retry_after = hits[0] + self._window - now
                raise RateLimitHit(
                    f"{scope} limit {limit}/min reached for {key}", scope, limit, retry_after
                )
            charges.append(key)
        for key in charges:
            self._hits.setdefault(key, deque()).append(now)

    def _recent(self, key: str, now: float) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            return deque()
        while hits and hits[0] <= now - self._window:
            hits.popleft()
        if not hits:
            del self._hits[key]
        return hits

    def _sweep(self, now: float) -> None:
        for key in list(self._hits):
            self._recent(key, now)
