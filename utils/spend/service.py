"""The spend side of one plugin instance: its ledger, its daily caps and its dashboard page.

main.py makes one in initialize() (where AstrBot's plugin data directory is known), asks its
guard before every generation, and stops it in terminate().
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from astrbot.api import logger

from ..core.clock import SYSTEM_CLOCK, Clock
from ..core.errors import LedgerError
from ..core.settings import SpendPolicy
from ..openrouter.key_pool import KeyStatus
from ..openrouter.usage import KeyReport
from .dashboard import DashboardSource, SpendDashboard, register_dashboard
from .guard import SpendGuard
from .ledger import Ledger
from .report import build_report
from .texts import format_report


class SpendService:
    def __init__(self, data_dir: Path, retention_days: int, *, clock: Clock = SYSTEM_CLOCK):
        self.data_dir = Path(data_dir)
        self.clock = clock
        self.ledger = Ledger(self.data_dir, retention_days=retention_days, clock=clock)
        self.guard = SpendGuard(self.ledger, clock)
        self.dashboard: SpendDashboard | None = None

    async def start(self) -> None:
        """Open the ledger. A ledger that cannot open is logged; generation goes on without it
        (nothing is recorded, so no cap can be reached)."""
        try:
            await self.ledger.open()
        except LedgerError as exc:
            logger.error(f"gemini-pic-gen: spend ledger unavailable: {exc.detail}")

    def register_page(
        self,
        context: Any,
        plugin_name: str,
        *,
        images_dir: Path,
        policy: Callable[[], SpendPolicy],
        key_status: Callable[[], list[KeyStatus]],
        key_reports: Callable[[], Awaitable[list[KeyReport]]],
        run_blocking: Callable[..., Awaitable[Any]],
    ) -> None:
        """The dashboard page's endpoints (AstrBot 4.28+; nothing on older versions)."""
        source = DashboardSource(
            ledger=self.ledger,
            images_dir=images_dir,
            policy=policy,
            key_status=key_status,
            key_reports=key_reports,
            run_blocking=run_blocking,
            clock=self.clock,
        )
        try:
            self.dashboard = register_dashboard(context, plugin_name, source)
        except Exception as exc:  # the page is a nicety: never let it stop the plugin
            logger.error(f"gemini-pic-gen: dashboard page not registered: {exc!r}", exc_info=True)

    async def report_text(self, policy: SpendPolicy, keys: list[KeyReport] | None) -> str:
        """The `/画图统计` answer. Raises LedgerError when the ledger cannot be read."""
        report = await build_report(self.ledger, self.clock.wall())
        return format_report(report, keys, policy)

    async def stop(self) -> None:
        if self.dashboard is not None:
            self.dashboard.close()
        await self.ledger.close()
