"""Measuring probes shared by tests and the benchmark."""

from __future__ import annotations

import asyncio


class LagProbe:
    """Measures how late the event loop wakes a sleeping coroutine: the longest loop stall.

    Use it as a context manager around the work to watch, inside a running loop.
    """

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.interval)
            self.longest = max(self.longest, loop.time() - start - self.interval)

    def __enter__(self) -> LagProbe:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
