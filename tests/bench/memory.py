"""Peak memory of one tool call, in a process of its own (started by run.py).

    python tests/bench/memory.py <fake base url> <runs> [plain]

Prints one JSON object: the peak RSS growth (bytes) of each run, the answer streamed as
OpenRouter streams it, or with `plain` sent as one JSON body. Between runs the process gives
freed heap back to the system (malloc_trim) and resets its high-water mark (clear_refs), so one
run's allocations can neither hide nor inflate the next run's peak.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.common import LARGE, MEDIUM, SMALL, BenchAstrBot, prompt

_KIB = 1024


def _status(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        match = re.search(rf"^{field}:\s+(\d+) kB", handle.read(), re.MULTILINE)
    assert match is not None, field
    return int(match.group(1)) * _KIB


def _settle() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: freed memory may stay mapped; the reset below still applies


def reset_peak() -> bool:
    """Make VmHWM equal to the current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


async def measure(base_url: str, runs: int, plain: bool = False) -> dict[str, object]:
    bot = BenchAstrBot("astrbot-bench-mem-")
    await bot.start(base_url)
    try:
        # Warm-up: lazy imports, Pillow plugins, the connection, AstrBot's caches.
        for body in (SMALL, MEDIUM, SMALL):
            (await bot.generate(prompt(body))).unlink()
        growth = []
        resettable = True
        for n in range(runs):
            _settle()
            resettable = reset_peak()
            before = _status("VmRSS") if resettable else _status("VmHWM")
            path = await bot.generate(prompt(LARGE, tag=n, plain=plain))
            growth.append(_status("VmHWM") - before)
            path.unlink()
            if not resettable:
                break  # the next run's peak would be hidden by this one's
        return {"growth": growth, "reset": resettable}
    finally:
        await bot.stop()


if __name__ == "__main__":
    plain = sys.argv[3:] == ["plain"]
    result = asyncio.run(measure(sys.argv[1], int(sys.argv[2]), plain))
    print(json.dumps(result), flush=True)
