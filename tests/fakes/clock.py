"""A virtual clock for retry and deadline tests: sleep() records the wait and returns at once."""

from __future__ import annotations

import asyncio

from utils.spend.lookups import TASK_NAME as LOOKUP_TASK


class FakeClock:
    """Implements the plugin's Clock protocol. Time moves only when someone sleeps on it."""

    def __init__(self, start: float = 1000.0, wall_start: float = 1_767_225_600.0) -> None:
        self.now = start
        self._wall_offset = wall_start - start
        self.sleeps: list[float] = []  # a request's waits (retries, cooldowns)
        # Waits of background work: the spend side's cost lookups after an aborted answer.
        self.background_sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + self._wall_offset

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        task = asyncio.current_task()
        if task is not None and task.get_name().startswith(LOOKUP_TASK):
            # Recorded, but the clock the requests run on does not move for it: background
            # work must not make a request's deadline or a key's cooldown pass in a test.
            self.background_sleeps.append(round(seconds, 6))
        else:
            self.sleeps.append(round(seconds, 6))
            self.now += max(0.0, seconds)
        await asyncio.sleep(0)  # still yield, like a real sleep
