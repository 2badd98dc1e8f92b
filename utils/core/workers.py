"""A small thread pool, owned by the plugin instance, for CPU-heavy image work.

Pillow, base64 and PNG checks run off the event loop, but not on asyncio's default executor:
that one has up to 32 threads, and a burst of group-chat requests would put all of them on the
GIL at once. Every thread waiting for the GIL delays the event loop too (measured with 20
concurrent requests on 2 cores: ~200 ms loop stalls with 6 threads, ~30-60 ms with 1-2).
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def default_workers() -> int:
    """One core left for the event loop; never more than two threads."""
    return max(1, min(2, (os.cpu_count() or 1) - 1))


class CpuPool:
    def __init__(self, max_workers: int | None = None) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers or default_workers(), thread_name_prefix="gemini-image"
        )
        self._closed = False

    async def run(self, fn: Callable[..., T], /, *args: Any) -> T:
        if self._closed:  # a request still finishing while the plugin reloads
            return await asyncio.to_thread(fn, *args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def close(self) -> None:
        """Stop taking work; what is queued still finishes, no one waits for it."""
        self._closed = True
        self._executor.shutdown(wait=False)
