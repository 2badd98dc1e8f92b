"""The spend side of one plugin instance: its ledger, its daily caps and its dashboard page.

main.py makes one with the plugin's data directory and hands its guard to the request pipeline
(which reserves before every generation and commits after it); `start()` in initialize(),
`stop()` in terminate() once the pipeline has let the requests in flight finish.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from astrbot.api import logger

from ..core.clock import SYSTEM_CLOCK, Clock
from ..core.errors import LedgerError
from ..core.settings import Settings
from ..imaging.store import ImageStore
from ..openrouter.key_pool import KeyPool, KeyStatus
from ..openrouter.usage import KeyReport, fetch_key_reports
from .dashboard import DashboardSource, SpendDashboard, register_dashboard
from .guard import SpendGuard
from .ledger import Ledger
from .report import SpendStats, build_report


class _Cpu(Protocol):
    run: Callable[..., Awaitable[Any]]


class SharedResources(Protocol):
    """What the page uses of the request pipeline (utils/chat/pipeline.DrawPipeline)."""

    store: ImageStore
    cpu: _Cpu

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
        self.guard = SpendGuard(self.ledger, clock)
        self.dashboard: SpendDashboard | None = None

    @property
    def plugin_name(self) -> str:
        """AstrBot names the data directory after the plugin; the page routes carry it too."""
        return self.data_dir.name

    async def start(self, context: Any, shared: SharedResources) -> None:
        """Open the ledger and register the dashboard page's endpoints (4.28+ only).

        A ledger that cannot open is logged; generation goes on without it (nothing is
        recorded, so no cap can be reached)."""
        try:
            await self.ledger.open()
        except LedgerError as exc:
            logger.error(f"gemini-pic-gen: spend ledger unavailable: {exc.detail}")
        self._register_page(context, shared)

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

    async def stats(self, http: aiohttp.ClientSession) -> SpendStats:
        """What the statistics command shows: the ledger's figures and what the service says
        of each key (the chat side words it)."""
        settings = self._settings()
        try:
            report = await build_report(self.ledger, self.clock.wall())
        except LedgerError as exc:
            logger.error(f"gemini-pic-gen: statistics without a ledger: {exc.detail}")
            return SpendStats(None, None, settings.spend)
        keys = await fetch_key_reports(http, settings.api_base, settings.api_keys)
        return SpendStats(report, keys, settings.spend)

    async def stop(self) -> None:
        if self.dashboard is not None:
            self.dashboard.close()
        await self.ledger.close()
