"""Peak memory of one tool call, in a process of its own (started by run.py).

    python tests/bench/memory.py <fake base url> <runs> <job>...

A job is `tool:<body>` (a tool call answered with that body as an event stream, the way
OpenRouter streams it; the delivery limit set high so that only receiving and storing count),
`plain:<body>` (the same answered as one JSON body, a gateway that does not stream) or
`reencode:<body>` (the delivery re-encode of that body's picture under the default limit).
Prints one JSON object: the peak RSS growth (bytes) of each run of each job. Between runs the
process gives freed heap back to the system (malloc_trim) and resets its high-water mark
(clear_refs), so one run's allocations can neither hide nor inflate the next run's peak.
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

from tests.bench.common import MEDIUM, SMALL, BenchAstrBot, prompt

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


class Peak:
    """The peak RSS growth of the block it wraps."""

    def __enter__(self) -> Peak:
        _settle()
        self.resettable = reset_peak()
        self.before = _status("VmRSS") if self.resettable else _status("VmHWM")
        self.growth = 0
        return self

    def __exit__(self, *exc: object) -> None:
        self.growth = _status("VmHWM") - self.before


async def measure(base_url: str, runs: int, jobs: list[str]) -> dict[str, object]:
    from utils.core.settings import Settings
    from utils.imaging.outgoing import fit_for_sending
    from utils.imaging.store import SavedImage, inspect_file

    bot = BenchAstrBot("astrbot-bench-mem-")
    await bot.start(base_url)
    # Receiving alone: no delivery re-encode inside the tool call.
    bot.loaded.plugin.config["send_image_max_mb"] = 100
    store = bot.loaded.plugin.pipeline.shared.store
    limit = Settings.from_config({}).send_image_max_bytes
    try:
        # Warm-up: lazy imports, Pillow plugins, the connection, AstrBot's caches.
        for body in (SMALL, MEDIUM, SMALL):
            (await bot.generate(prompt(body))).unlink()
        growth: dict[str, list[int]] = {}
        resettable = True
        for job in jobs:
            kind, body = job.split(":", 1)
            growth[job] = []
            source = await bot.generate(prompt(body)) if kind == "reencode" else None
            for n in range(runs):
                if source is None:
                    with Peak() as peak:
                        path = await bot.generate(prompt(body, tag=n, plain=kind == "plain"))
                else:
                    info = inspect_file(source)
                    saved = SavedImage(
                        source, info.format, info.width, info.height, source.stat().st_size
                    )
                    with Peak() as peak:
                        path = fit_for_sending(saved, store, limit).sent.path
                path.unlink()
                growth[job].append(peak.growth)
                resettable = peak.resettable
                if not resettable:
                    break  # the next run's peak would be hidden by this one's
            if source is not None:
                source.unlink()
        return {"growth": growth, "reset": resettable}
    finally:
        await bot.stop()


if __name__ == "__main__":
    result = asyncio.run(measure(sys.argv[1], int(sys.argv[2]), sys.argv[3:]))
    print(json.dumps(result), flush=True)
