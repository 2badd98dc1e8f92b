"""A plugin instance on a virtual clock: waits are recorded and take no time."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from tests.fakes.clock import FakeClock


@dataclass
class VirtualTime:
    """A plugin instance built on a recording clock, with a retry policy without jitter."""

    clock: FakeClock
    plugin: Any
    astrbot: Any

    @property
    def sleeps(self) -> list[float]:
        return self.clock.sleeps

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def wall(self) -> float:
        return self.clock.wall()

    async def run_tool(self, event: Any, timeout: int = 60, **args: Any) -> list[str]:
        return await self.astrbot.run_tool(event, timeout, plugin=self.plugin, **args)


def tuned_policy(astrbot: Any, **changes: Any) -> Any:
    """The loaded plugin's own RetryPolicy class (its errors are the plugin's), retuned."""
    return dataclasses.replace(astrbot.plugin.pipeline.shared.retry_policy, **changes)
