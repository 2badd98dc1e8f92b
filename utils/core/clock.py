"""Time for one tool run: a clock that tests can replace, and the run's deadline.

AstrBot cancels a tool call after `tool_call_timeout` (120 s by default). Every wait and every
HTTP attempt of a run asks its Deadline how much time is left, so the run ends on its own, with a
clear message, before AstrBot cuts it off.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Protocol


class Clock(Protocol):
    """Where time comes from. Tests pass a recording clock whose sleep() returns at once."""

    def monotonic(self) -> float: ...

    def wall(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: time.monotonic for durations, time.time for times shown to people."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


SYSTEM_CLOCK = SystemClock()


@dataclass(frozen=True)
class Deadline:
    """A time budget that started at `started` (monotonic seconds of `clock`)."""

    budget: float
    started: float
    clock: Clock = field(default=SYSTEM_CLOCK, compare=False, repr=False)

    @classmethod
    def start(cls, budget: float, clock: Clock = SYSTEM_CLOCK) -> Deadline:
        return cls(budget=max(0.0, budget), started=clock.monotonic(), clock=clock)

    def elapsed(self) -> float:
        return max(0.0, self.clock.monotonic() - self.started)

    def remaining(self) -> float:
        return max(0.0, self.budget - self.elapsed())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def fits(self, wait: float, reserve: float = 0.0) -> bool:
        """Whether waiting `wait` seconds still leaves `reserve` seconds for useful work."""
        return self.remaining() >= max(0.0, wait) + max(0.0, reserve)
