"""Background removal of the plugin's own old images (and stale temp files) from images/.

Only names the image store creates are touched; symlinks, directories and anything else are left
alone, and so are the files something still holds (held.py: a request on its way to the chat,
the conversation memory). Before each sweep the memory forgets what has expired
(`before_sweep`), so its files go in the same pass. The directory scan runs in a worker thread
so a big directory never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass
from pathlib import Path

from astrbot.api import logger

from ..core.clock import SYSTEM_CLOCK, Clock
from ..core.tasks import cancel_and_wait
from .store import is_own_image_name, is_own_temp_name

SWEEP_INTERVAL = 60.0
TASK_NAME = "gemini-image-cleanup"


@dataclass(frozen=True)
class SweepReport:
    removed: int = 0
    kept: int = 0
    failed: int = 0


def sweep(
    directory: Path,
    max_age: float,
    now: float | None = None,
    held: Container[str] = frozenset(),
) -> SweepReport:
    """Delete our regular files in `directory` older than max_age seconds (at `now`, epoch
    seconds), except those `held` names. Blocking."""
    now = SYSTEM_CLOCK.wall() if now is None else now
    removed = kept = failed = 0
    try:
        entries = os.scandir(directory)
    except FileNotFoundError:
        return SweepReport()
    with entries:
        for entry in entries:
            if not (is_own_image_name(entry.name) or is_own_temp_name(entry.name)):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
                if not stat.S_ISREG(info.st_mode):  # a symlink, directory or device: not ours
                    continue
                if now - info.st_mtime < max_age or entry.name in held:
                    kept += 1
                    continue
                os.unlink(entry.path)
                removed += 1
            except FileNotFoundError:
                continue  # removed meanwhile (another instance during a reload)
            except OSError as exc:
                failed += 1
                logger.warning(f"image cleanup: cannot remove {entry.name}: {exc}")
    return SweepReport(removed, kept, failed)


class CleanupTask:
    """Sweeps at start, then every `interval` seconds (waited on `clock`), until stopped.

    `max_age` is read before each sweep, so a changed retention applies without a restart;
    `held` names the files to leave alone whatever their age; `before_sweep` runs before each
    sweep (the conversation memory letting go of what has expired).
    """

    def __init__(
        self,
        directory: Path,
        max_age: Callable[[], float],
        interval: float = SWEEP_INTERVAL,
        *,
        held: Container[str] = frozenset(),
        clock: Clock = SYSTEM_CLOCK,
        before_sweep: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.directory = directory
        self._max_age = max_age
        self._interval = interval
        self._held = held
        self._clock = clock
        self._before_sweep = before_sweep
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.create_task(self._run(), name=TASK_NAME)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait([task])

    async def run_once(self) -> SweepReport:
        if self._before_sweep is not None:
            try:
                await self._before_sweep()
            except Exception as exc:  # the sweep still runs: what is held stays anyway
                logger.error(f"image cleanup: before the sweep: {exc!r}")
        report = await asyncio.to_thread(
            sweep, self.directory, self._max_age(), self._clock.wall(), self._held
        )
        if report.removed or report.failed:
            logger.info(
                f"image cleanup: removed {report.removed}, kept {report.kept}, "
                f"failed {report.failed}"
            )
        return report

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep sweeping: one bad pass must not end cleanup for good
                logger.error(f"image cleanup failed: {exc!r}")
            await self._clock.sleep(self._interval)
