"""The plugin's page in AstrBot's dashboard (4.28+ plugin Pages): the JSON it reads.

`pages/spend/index.html` runs in a sandboxed iframe of the dashboard and calls
`window.AstrBotPluginPage.apiGet("spend/<name>")`; the dashboard forwards that, behind its own
login, to `/api/v1/plugins/extensions/<plugin>/spend/<name>`, which reaches the handlers
registered here under `/<plugin>/spend/<name>`. The answers hold masked keys only, and the
pictures as small inline thumbnails (the iframe cannot send the dashboard's token for an
<img> URL).

AstrBot 4.14 has no plugin Pages (and no `astrbot.api.web`): nothing is registered there.
"""

from __future__ import annotations

import asyncio
import base64
import io
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astrbot.api import logger
from PIL import Image

from ..core.clock import SYSTEM_CLOCK, Clock
from ..core.errors import LedgerError, PluginClosedError
from ..core.settings import SpendPolicy
from ..imaging.store import is_own_image_name
from ..openrouter.key_pool import KeyStatus
from ..openrouter.usage import KeyReport
from .days import last_days, local_day
from .ledger import GroupTotals, Ledger, ModelTotals, Totals, UserTotals

PAGE_NAME = "spend"
DEFAULT_CHART_DAYS = 14
TOP = 10
LATEST = 12
MAX_LATEST = 50  # pictures the page may ask for, and ledger rows looked through for them
THUMB_SIDE = 200
_THUMB_CACHE = 64  # thumbnails kept per plugin instance (a few KB each)
# What a failed endpoint answers as its error message: a code the page turns into its own
# label (pages/spend/app.js, ERRORS). The plugin side has no words.
ERROR_LEDGER_UNAVAILABLE = "ledger_unavailable"
ERROR_INTERNAL = "internal_error"


def pages_supported() -> bool:
    """Whether this AstrBot serves plugin Pages (4.28+ ships astrbot.api.web with them)."""
    try:
        import astrbot.api.web  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class DashboardSource:
    """What the page shows, as the plugin instance provides it."""

    ledger: Ledger
    images_dir: Path
    policy: Callable[[], SpendPolicy]
    key_status: Callable[[], list[KeyStatus]]
    key_reports: Callable[[], Awaitable[list[KeyReport]]]
    run_blocking: Callable[..., Awaitable[Any]]  # the plugin's CpuPool.run
    clock: Clock = SYSTEM_CLOCK


# --- JSON of ledger results ---------------------------------------------------------------------


def totals_json(totals: Totals) -> dict[str, Any]:
    return {
        "generations": totals.generations,
        "pictures": totals.pictures,
        "cost": round(totals.cost, 6),
        "unknown": totals.unknown,
        "without_picture": totals.without_picture,
        "without_picture_cost": round(totals.without_picture_cost, 6),
        "undelivered": totals.undelivered,
        "pending": totals.pending,
    }


def _group_json(row: GroupTotals) -> dict[str, Any]:
    return {"platform": row.platform, "group_id": row.group_id, **totals_json(row.totals)}


def _user_json(row: UserTotals) -> dict[str, Any]:
    return {"platform": row.platform, "user_id": row.user_id, **totals_json(row.totals)}


def _model_json(row: ModelTotals) -> dict[str, Any]:
    return {"model": row.model, **totals_json(row.totals)}


def policy_json(policy: SpendPolicy) -> dict[str, Any]:
    return {
        "user_daily_limit": policy.user_daily_limit,
        "group_daily_limit": policy.group_daily_limit,
        "user_daily_budget_usd": policy.user_daily_budget_usd,
        "group_daily_budget_usd": policy.group_daily_budget_usd,
        "daily_budget_usd": policy.daily_budget_usd,
        "caps_apply_to_admins": policy.caps_apply_to_admins,
    }


def keys_json(rows: Sequence[KeyStatus], reports: Sequence[KeyReport]) -> list[dict[str, Any]]:
    """The pool's rows with what GET /key said about each key (matched by position: both lists
    follow the configured key order; by masked key when the lengths differ)."""
    by_mask = {r.masked: r for r in reports}
    merged = []
    for i, row in enumerate(rows):
        report = reports[i] if len(reports) == len(rows) else by_mask.get(row.masked)
        info = report.info if report is not None else None
        merged.append(
            {
                "masked": row.masked,
                "state": row.state.value,
                "until": row.until,
                "successes": row.successes,
                "failures": row.failures,
                "in_flight": row.in_flight,
                "known": info is not None,
                "label": info.shown_label if info else "",
                "limit": info.limit if info else None,
                "limit_remaining": info.limit_remaining if info else None,
                "usage": info.usage if info else None,
                "usage_daily": info.usage_daily if info else None,
                "is_free_tier": info.is_free_tier if info else None,
            }
        )
    return merged


def thumbnail_data_url(path: Path, side: int = THUMB_SIDE) -> str | None:
    """A small JPEG of the image as a data URL; None when it is gone or unreadable. Blocking."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (side, side))  # JPEG sources decode at reduced size
            image.thumbnail((side, side))
            small = image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    out = io.BytesIO()
    small.save(out, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


# --- the handlers ---------------------------------------------------------------------------------


class SpendDashboard:
    """The page's three endpoints over one plugin instance; `close()` on unload (AstrBot keeps
    registered handlers until a new instance replaces them, and they must not use a closed
    ledger)."""

    def __init__(self, source: DashboardSource) -> None:
        self._source: DashboardSource | None = source
        self._thumbs: OrderedDict[tuple[str, int], str | None] = OrderedDict()

    def close(self) -> None:
        self._source = None

    def _live(self) -> DashboardSource:
        if self._source is None:
            raise LedgerError("the plugin instance behind the page was unloaded")
        return self._source

    async def overview(self, days: int = DEFAULT_CHART_DAYS) -> dict[str, Any]:
        source = self._live()
        now = source.clock.wall()
        days = max(1, min(days, source.ledger.retention_days))
        today = local_day(now)
        series = await source.ledger.last_days(days)
        summary = await source.ledger.summary(today, today, TOP)
        week = await source.ledger.summary(last_days(now, 7)[0], today, TOP)
        return {
            "at": now,
            "today": today,
            "days": [{"day": d.day, **totals_json(d.totals)} for d in series],
            "today_totals": totals_json(summary.totals),
            "week_totals": totals_json(week.totals),
            "top_users": [_user_json(r) for r in summary.users],
            "top_groups": [_group_json(r) for r in summary.groups],
            "models": [_model_json(r) for r in summary.models],
            "caps": policy_json(source.policy()),
            "in_flight": sum(r.in_flight for r in source.key_status()),
        }

    async def keys(self) -> dict[str, Any]:
        source = self._live()
        rows = source.key_status()
        reports = await source.key_reports() if rows else []
        return {"keys": keys_json(rows, reports)}

    async def latest(self, limit: int = LATEST) -> dict[str, Any]:
        """The `limit` (1 to MAX_LATEST) latest pictures still kept, newest first; thumbnails
        are made for those only."""
        source = self._live()
        limit = max(1, min(limit, MAX_LATEST))
        pictures: list[dict[str, Any]] = []
        for entry in await source.ledger.latest(MAX_LATEST):
            for name in entry.files:
                thumb = await self._thumbnail(source, name)
                if thumb is None:
                    continue  # removed by the cleanup (or never ours): only kept pictures show
                pictures.append(
                    {
                        "at": entry.at,
                        "platform": entry.platform,
                        "user_id": entry.user_id,
                        "group_id": entry.group_id,
                        "model": entry.model,
                        "cost": entry.cost,
                        "thumb": thumb,
                    }
                )
                if len(pictures) == limit:
                    return {"pictures": pictures}
        return {"pictures": pictures}

    async def _thumbnail(self, source: DashboardSource, name: str) -> str | None:
        if not is_own_image_name(name):  # a bare name of ours: never a path from elsewhere
            return None
        path = source.images_dir / name
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            return None
        key = (name, stamp)
        if key not in self._thumbs:
            self._thumbs[key] = await source.run_blocking(thumbnail_data_url, path)
            while len(self._thumbs) > _THUMB_CACHE:
                self._thumbs.popitem(last=False)
        return self._thumbs[key]


def _int_query(name: str, default: int) -> int:
    from astrbot.api.web import request

    value = request.query.get(name, default, int)
    return value if isinstance(value, int) else default


def _view(dashboard: SpendDashboard, name: str) -> Callable[[], Awaitable[Any]]:
    from astrbot.api.web import error_response, json_response

    async def view() -> Any:
        try:
            if name == "overview":
                data = await dashboard.overview(_int_query("days", DEFAULT_CHART_DAYS))
            elif name == "latest":
                data = await dashboard.latest(_int_query("limit", LATEST))
            else:
                data = await dashboard.keys()
        except (LedgerError, PluginClosedError) as exc:  # e.g. while the plugin reloads
            logger.warning(f"gemini-pic-gen: dashboard {name}: {exc.detail}")
            return error_response(ERROR_LEDGER_UNAVAILABLE, status_code=503)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug of ours: log it, show a plain message
            logger.error(f"gemini-pic-gen: dashboard {name} failed: {exc!r}", exc_info=True)
            return error_response(ERROR_INTERNAL, status_code=500)
        return json_response({"status": "ok", "data": data})

    view.__name__ = f"gemini_pic_gen_spend_{name}"
    return view


def register_dashboard(
    context: Any, plugin_name: str, source: DashboardSource
) -> SpendDashboard | None:
    """Register the page's endpoints; None (and nothing registered) where Pages do not exist."""
    if not pages_supported() or not callable(getattr(context, "register_web_api", None)):
        logger.info("gemini-pic-gen: this AstrBot has no plugin Pages; no dashboard page")
        return None
    dashboard = SpendDashboard(source)
    for name, desc in (
        ("overview", "picture counts and spend per day, today's top users and groups"),
        ("keys", "key pool health and each key's remaining limit"),
        ("latest", "thumbnails of the latest pictures still kept"),
    ):
        context.register_web_api(
            f"/{plugin_name}/{PAGE_NAME}/{name}", _view(dashboard, name), ["GET"], desc
        )
    return dashboard
