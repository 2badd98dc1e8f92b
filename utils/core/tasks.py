"""Ending the background tasks an instance started: cancelled, then awaited, on unload."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


async def cancel_and_wait(tasks: Iterable[asyncio.Task[object] | None]) -> list[BaseException]:
    """Cancel each task and wait until all have ended; the exceptions they ended with other
    than the cancellation (for the caller to log). A task that is never awaited would end
    unobserved, its errors lost and its resources released in no particular order."""
    pending = [task for task in tasks if task is not None]
    for task in pending:
        task.cancel()
    ends = await asyncio.gather(*pending, return_exceptions=True)
    return [
        end
        for end in ends
        if isinstance(end, BaseException) and not isinstance(end, asyncio.CancelledError)
    ]
