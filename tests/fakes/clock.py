"""A virtual clock for retry and deadline tests: sleep() records the wait and returns at once
(the image cleanup's waits excepted: they last until the clock has moved that far)."""

from __future__ import annotations

import asyncio

from utils.imaging.cleanup import TASK_NAME as CLEANUP_TASK
from utils.spend.lookups import TASK_NAME as LOOKUP_TASK


class FakeClock:
    """Implements the plugin's Clock protocol. Time moves only when someone sleeps on it."""

    def __init__(self, start: float = 1000.0, wall_start: float = 1_767_225_600.0) -> None:
        self.now = start
        self._wall_offset = wall_start - start
        self.sleeps: list[float] = []  # a request's waits (retries, cooldowns)
        # Waits of background work: the spend side's cost lookups after an aborted answer.
        self.background_sleeps: list[float] = []
        # The image cleanup's waits between sweeps, and those still waiting (until, wake-up).
        self.cleanup_sleeps: list[float] = []
        self._parked: list[tuple[float, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + self._wall_offset

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self._wake()

    async def sleep(self, seconds: float) -> None:
        task = asyncio.current_task()
        name = task.get_name() if task is not None else ""
        if name == CLEANUP_TASK:
            # An endless loop: returning at once would sweep without end. It sweeps again once
            # the clock has moved past its wait (advance() or a request's waits).
            self.cleanup_sleeps.append(round(seconds, 6))
            await self._park(self.now + max(0.0, seconds))
            return
        if name.startswith(LOOKUP_TASK):
            # Recorded, but the clock the requests run on does not move for it: background
            # work must not make a request's deadline or a key's cooldown pass in a test.
            self.background_sleeps.append(round(seconds, 6))
        else:
            self.sleeps.append(round(seconds, 6))
            self.now += max(0.0, seconds)
            self._wake()
        await asyncio.sleep(0)  # still yield, like a real sleep

    async def _park(self, until: float) -> None:
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        parked = (until, woken)
        self._parked.append(parked)
        try:
            await woken
        finally:
            self._parked.remove(parked)

    def _wake(self) -> None:
        for until, woken in self._parked:
            if until <= self.now and not woken.done():
                woken.set_result(None)
