"""The spend side of one plugin instance: its ledger, its daily caps and its dashboard page.

main.py makes one with the plugin's data directory, hands its guard to the request pipeline
(which reserves before every generation and commits after it), opens it in initialize() and
stops it in terminate() once the requests in flight are done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from astrbot.api import logger

from ..chat import texts
from ..core.clock import SYSTEM_CLOCK, Clock
from ..core.errors import LedgerError
from ..core.settings import Settings
from ..openrouter.key_pool import KeyStatus
from ..openrouter.usage import KeyReport, fetch_key_reports
from .dashboard import DashboardSource, SpendDashboard, register_dashboard
from .guard import SpendGuard
from .ledger import Ledger
from .report import build_report


class SpendService:
    def __init__(self, data_dir: Path, retention_days: int, *, clock: Clock = SYSTEM_CLOCK):
        self.data_dir = Path(data_dir)
        self.clock = clock
        self.ledger = Ledger(self.data_dir, retention_days=retention_days, clock=clock)
        self.guard = SpendGuard(self.ledger, clock)
        self.dashboard: SpendDashboard | None = None

    @property
    def plugin_name(self) -> str:
        """AstrBot names the data directory after the plugin; the page routes carry it too."""
        return self.data_dir.name

    async def start(self) -> None:
        """Open the ledger. One that cannot open is logged; generation goes on without it
        (nothing is recorded, so no cap can be reached)."""
        try:
            await self.ledger.open()
        except LedgerError as exc:
            logger.error(f"gemini-pic-gen: spend ledger unavailable: {exc.detail}")

    def register_page(
        self,
        context: Any,
        *,
        images_dir: Path,
        settings: Callable[[], Settings],
        key_status: Callable[[], list[KeyStatus]],
        http: Callable[[], aiohttp.ClientSession],
        run_blocking: Callable[..., Awaitable[Any]],
    ) -> None:
        """The dashboard page's endpoints (AstrBot 4.28+; nothing on older versions)."""

        async def key_reports() -> list[KeyReport]:
            current = settings()
            return await fetch_key_reports(http(), current.api_base, current.api_keys)

        source = DashboardSource(
            ledger=self.ledger,
            images_dir=images_dir,
            policy=lambda: settings().spend,
            key_status=key_status,
            key_reports=key_reports,
            run_blocking=run_blocking,
            clock=self.clock,
        )
        try:
            self.dashboard = register_dashboard(context, self.plugin_name, source)
        except Exception as exc:  # the page is a nicety: never let it stop the plugin
            logger.error(f"gemini-pic-gen: dashboard page not registered: {exc!r}", exc_info=True)

    async def report_text(self, settings: Settings, http: aiohttp.ClientSession) -> str:
        """The `/画图统计` answer: the ledger's statistics and what the service says of each key."""
        try:
            report = await build_report(self.ledger, self.clock.wall())
        except LedgerError as exc:
            logger.error(f"gemini-pic-gen: /画图统计 without a ledger: {exc.detail}")
            return texts.STATS_UNAVAILABLE
        keys = await fetch_key_reports(http, settings.api_base, settings.api_keys)
        return texts.format_report(report, keys, settings.spend)

    async def stop(self) -> None:
        if self.dashboard is not None:
            self.dashboard.close()
        await self.ledger.close()
