"""The spend side of one plugin instance: its ledger, its daily caps, the costs it looks up
afterwards and its dashboard page.

main.py makes one with the plugin's data directory and hands its guard to the request pipeline
(which reserves before every generation and commits every billed answer); `start()` in
initialize(); in terminate() `close_page()` at once and `close()` once the last request has
ended (it records its answer): the cost lookups are cancelled and awaited, then the ledger
closes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from astrbot.api import logger

from ..core.clock import SYSTEM_CLOCK, Clock
from ..core.errors import LedgerError, PluginClosedError
from ..core.keys import mask_key
from ..core.settings import Settings
from ..core.workers import CpuPool
from ..imaging.store import ImageStore
from ..openrouter.key_pool import KeyPool, KeyStatus
from ..openrouter.usage import (
    GenerationCost,
    KeyReport,
    fetch_generation_cost,
    fetch_key_reports,
)
from .dashboard import DashboardSource, SpendDashboard, register_dashboard
from .guard import SpendGuard
from .ledger import Ledger
from .lookups import CostLookups
from .report import SpendStats, build_report


class SharedResources(Protocol):
    """What the page and /画图统计 use of the requests' resources (utils/chat/resources.py)."""

    @property
    def store(self) -> ImageStore: ...

    @property
    def cpu(self) -> CpuPool: ...

    def http(self) -> aiohttp.ClientSession: ...

    def key_pool(self, settings: Settings) -> KeyPool: ...


class SpendService:
    def __init__(
        self, data_dir: Path, settings: Callable[[], Settings], *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.data_dir = Path(data_dir)
        self.clock = clock
        self._settings = settings  # the plugin's current config, read when needed
        retention = settings().spend.ledger_retention_days
        self.ledger = Ledger(self.data_dir, retention_days=retention, clock=clock)
        self.lookups = CostLookups(self.ledger, self._ask_cost, clock)
        self.guard = SpendGuard(self.ledger, clock, self.lookups)
        self.dashboard: SpendDashboard | None = None
        self._shared: SharedResources | None = None

    @property
    def plugin_name(self) -> str:
        """AstrBot names the data directory after the plugin; the page routes carry it too."""
        return self.data_dir.name

    async def start(self, context: Any, shared: SharedResources) -> None:
        """Open the ledger and register the dashboard page's endpoints (4.28+ only).

        A ledger that cannot open (locked by another connection, say) is logged and kept; each
        use tries to open it again, and the caps meanwhile fail closed when a money cap is set
        (guard.py). Cost lookups a previous instance left pending are taken up again."""
        self._shared = shared
        try:
            await self.ledger.open()
        except LedgerError as exc:
            logger.error(f"gemini-pic-gen: spend ledger unavailable: {exc.detail}")
        else:
            await self.lookups.resume()
        self._register_page(context, shared)

    async def _ask_cost(self, generation_id: str, key_mask: str) -> GenerationCost:
        """GET /generation for a lookup, with the configured key that has this mask."""
        settings = self._settings()
        key = next((k for k in settings.api_keys if mask_key(k) == key_mask), None)
        if key is None:
            return GenerationCost(final=True, problem=f"key {key_mask} is no longer configured")
        if self._shared is None:
            return GenerationCost(final=True, problem="the spend service was not started")
        try:
            http = self._shared.http()
        except PluginClosedError as exc:
            return GenerationCost(final=True, problem=exc.detail)
        return await fetch_generation_cost(http, settings.api_base, key, generation_id)

    def _register_page(self, context: Any, shared: SharedResources) -> None:
        def key_status() -> list[KeyStatus]:
            settings = self._settings()
            return shared.key_pool(settings).snapshot() if settings.api_keys else []

        async def key_reports() -> list[KeyReport]:
            settings = self._settings()
            return await fetch_key_reports(shared.http(), settings.api_base, settings.api_keys)

        source = DashboardSource(
            ledger=self.ledger,
            images_dir=shared.store.directory,
            policy=lambda: self._settings().spend,
            key_status=key_status,
            key_reports=key_reports,
            run_blocking=shared.cpu.run,
            clock=self.clock,
        )
        try:
            self.dashboard = register_dashboard(context, self.plugin_name, source)
        except Exception as exc:  # the page is a nicety: never let it stop the plugin
            logger.error(f"gemini-pic-gen: dashboard page not registered: {exc!r}", exc_info=True)

    async def stats(self) -> SpendStats:
        """What the statistics command shows: the ledger's figures and what the service says
        of each key (the chat side words it); without a ledger (or after unload) no figures."""
        settings = self._settings()
        try:
            if self._shared is None:
                raise PluginClosedError("the spend service was not started")
            http = self._shared.http()
            report = await build_report(self.ledger, self.clock.wall())
        except (LedgerError, PluginClosedError) as exc:
            logger.error(f"gemini-pic-gen: statistics without a ledger: {exc.detail}")
            return SpendStats(None, None, settings.spend)
        keys = await fetch_key_reports(http, settings.api_base, settings.api_keys)
        return SpendStats(report, keys, settings.spend)

    def close_page(self) -> None:
        """The page stops answering from this instance (a new one registers its own)."""
        if self.dashboard is not None:
            self.dashboard.close()

    async def close(self) -> None:
        """Unload, once no request runs: the lookups end (their rows stay pending for the next
        instance), the commits still writing finish, the ledger closes."""
        await self.lookups.stop()
        await self.guard.settle()
        await self.ledger.close()
