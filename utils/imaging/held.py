"""Which of the store's files something still needs, so that the cleanup leaves them alone.

A request holds its pictures from the moment it has them until it has ended (delivery, the
NapCat push, the originals as files, a detached request's own sending); the conversation memory
may hold pictures for longer. On release a file's time is set to the release, so its retention
counts from when it was last used: an adapter that reads a file a little after send() returned
still finds it. Thread-safe: the cleanup's sweep asks from a worker thread.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path


class HeldFiles:
    """Holds on files of one directory, counted by name (several holders may hold one file)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return isinstance(name, str) and self._counts[name] > 0

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for count in self._counts.values() if count > 0)

    def hold(self) -> Hold:
        """A new holder; add files to it as they come."""
        return Hold(self)

    def _add(self, names: Iterable[str]) -> None:
        with self._lock:
            self._counts.update(names)

    def _drop(self, names: Iterable[str]) -> None:
        with self._lock:
            for name in names:
                self._counts[name] -= 1
                if self._counts[name] <= 0:
                    del self._counts[name]


class Hold:
    """One holder's files (a request's pictures): held until release()."""

    def __init__(self, registry: HeldFiles) -> None:
        self._registry = registry
        self._paths: dict[str, Path] = {}
        self._released = False

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(self._paths.values())

    def add(self, paths: Iterable[Path]) -> None:
        if self._released:
            raise ValueError("add to a released hold")
        new = {p.name: p for p in paths if p.name not in self._paths}
        self._paths.update(new)
        self._registry._add(list(new))

    def release(self, now: float | None) -> None:
        """Let the files go, their time set to `now` (epoch seconds): they were used until
        then. Blocking (a stat change per file); a file already gone is fine. `now` None
        leaves their times as they are (a holder that only kept them, like the conversation
        memory: their retention counts from their last use)."""
        if self._released:
            return
        self._released = True
        if now is not None:
            for path in self._paths.values():
                try:
                    os.utime(path, (now, now))
                except OSError:  # removed by hand, or never written: nothing to keep
                    pass
        self._registry._drop(list(self._paths))
