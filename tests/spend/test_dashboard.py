"""The dashboard page's JSON from a real ledger; its routes inside the real AstrBot."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fakes.openrouter import make_png
from tests.support.harness import PLUGIN_DIR_NAME
from tests.support.ledger_rows import DAY, NOON, entry
from utils.core.errors import LedgerError
from utils.core.settings import SpendPolicy
from utils.openrouter.key_pool import KeyState, KeyStatus
from utils.openrouter.usage import KeyInfo, KeyReport
from utils.spend.dashboard import (
    ERROR_INTERNAL,
    ERROR_LEDGER_UNAVAILABLE,
    PAGE_NAME,
    DashboardSource,
    SpendDashboard,
    keys_json,
    pages_supported,
)
from utils.spend.ledger import Ledger

ROWS = [
    KeyStatus("sk-or-…a1a1", KeyState.OK, None, 3, 1, 0, ""),
    KeyStatus("sk-or-…b2b2", KeyState.COOLING_DOWN, NOON + 60, 0, 2, 1, "HTTP 429"),
]
REPORTS = [
    KeyReport("sk-or-…a1a1", KeyInfo("", 10.0, 4.0, 6.0, 1.0, False)),
    KeyReport("sk-or-…b2b2"),
]


def source(ledger: Ledger, images: Path, noon_clock) -> DashboardSource:
    async def reports() -> list[KeyReport]:
        return REPORTS

    return DashboardSource(
        ledger=ledger,
        images_dir=images,
        policy=lambda: SpendPolicy(group_daily_limit=30),
        key_status=lambda: ROWS,
        key_reports=reports,
        run_blocking=asyncio.to_thread,
        clock=noon_clock,
    )


async def test_overview_of_the_ledger(ledger: Ledger, tmp_path: Path, noon_clock):
    await ledger.record(entry(cost=0.04))
    await ledger.record(entry(user="b", pictures=2, cost=None))
    await ledger.record(entry(NOON - 2 * DAY, cost=0.5))
    data = await SpendDashboard(source(ledger, tmp_path, noon_clock)).overview(days=3)
    assert [(d["day"], d["pictures"]) for d in data["days"]] == [
        ("2026-11-28", 1),
        ("2026-11-29", 0),
        ("2026-11-30", 3),
    ]
    today = {
        "generations": 2,
        "pictures": 3,
        "cost": 0.04,
        "unknown": 1,
        "without_picture": 0,
        "without_picture_cost": 0.0,
        "undelivered": 0,
        "pending": 0,
    }
    assert data["today_totals"] == today
    assert data["week_totals"]["cost"] == 0.54
    assert [u["user_id"] for u in data["top_users"]] == ["b", "10001"]
    # The only group had every answer of today: its totals are today's.
    assert data["top_groups"] == [{"platform": "aiocqhttp", "group_id": "20002", **today}]
    assert data["caps"]["group_daily_limit"] == 30
    assert data["in_flight"] == 1


async def test_keys_merge_the_pool_with_what_the_service_said(ledger, tmp_path, noon_clock):
    data = await SpendDashboard(source(ledger, tmp_path, noon_clock)).keys()
    first, second = data["keys"]
    assert (first["state"], first["limit_remaining"], first["known"]) == ("ok", 4.0, True)
    assert (second["state"], second["until"], second["known"]) == ("cooling down", NOON + 60, False)
    assert second["limit"] is None and second["in_flight"] == 1


def test_keys_match_by_mask_when_the_lists_differ():
    merged = keys_json(ROWS, [REPORTS[0]])
    assert merged[0]["known"] and not merged[1]["known"]


async def test_latest_shows_only_our_pictures_that_are_still_kept(ledger, tmp_path, noon_clock):
    (tmp_path / "gemini_image_kept.png").write_bytes(make_png("kept", size=(640, 480)))
    (tmp_path / "gemini_image_broken.png").write_bytes(b"not a picture")
    (tmp_path / "secret.png").write_bytes(make_png("not ours"))
    await ledger.record(entry(NOON - 60, files=("gemini_image_kept.png", "gemini_image_gone.png")))
    await ledger.record(
        entry(NOON, files=("../secret.png", "secret.png", "gemini_image_broken.png"))
    )
    data = await SpendDashboard(source(ledger, tmp_path, noon_clock)).latest()
    [picture] = data["pictures"]
    assert picture["thumb"].startswith("data:image/jpeg;base64,")
    assert picture["at"] == NOON - 60 and picture["cost"] == 0.04


async def test_latest_makes_thumbnails_only_for_the_pictures_it_shows(ledger, tmp_path, noon_clock):
    """Thumbnails for the `limit` newest pictures only; a limit out of range (a negative one
    from the query, say) is taken as the nearest allowed, never as a cut from the end."""
    for n in range(5):
        names = (f"gemini_image_{n}a.png", f"gemini_image_{n}b.png")
        for name in names:
            (tmp_path / name).write_bytes(make_png(name, size=(64, 48)))
        await ledger.record(entry(NOON + n, user=f"u{n}", files=names))
    made: list[Path] = []

    async def run_blocking(fn, path, *args):
        made.append(path)
        return await asyncio.to_thread(fn, path, *args)

    dashboard = SpendDashboard(
        replace(source(ledger, tmp_path, noon_clock), run_blocking=run_blocking)
    )
    data = await dashboard.latest(3)
    assert [p["user_id"] for p in data["pictures"]] == ["u4", "u4", "u3"]
    assert [p.name for p in made] == [
        "gemini_image_4a.png",
        "gemini_image_4b.png",
        "gemini_image_3a.png",
    ]
    for limit in (-2, 0):
        [newest] = (await dashboard.latest(limit))["pictures"]
        assert newest["user_id"] == "u4"
    assert len((await dashboard.latest(500))["pictures"]) == 10


async def test_an_unloaded_instance_answers_ledger_error(ledger, tmp_path, noon_clock):
    dashboard = SpendDashboard(source(ledger, tmp_path, noon_clock))
    dashboard.close()
    for call in (dashboard.overview(), dashboard.keys(), dashboard.latest()):
        with pytest.raises(LedgerError):
            await call


async def test_routes_exist_only_where_astrbot_has_plugin_pages(astrbot):
    routes = [api[0] for api in astrbot.context.registered_web_apis]
    ours = [r for r in routes if r.startswith(f"/{PLUGIN_DIR_NAME}/")]
    if pages_supported():
        assert sorted(ours) == sorted(
            f"/{PLUGIN_DIR_NAME}/{PAGE_NAME}/{name}" for name in ("overview", "keys", "latest")
        )
    else:  # AstrBot 4.14: no Pages, nothing registered, the plugin still loads
        assert ours == []
    assert (astrbot.plugin_dir / "pages" / PAGE_NAME / "index.html").is_file()


async def test_a_failed_endpoint_answers_an_error_code_the_page_labels(astrbot, plugin_config):
    """The plugin side has no words: a ledger that cannot be read answers a code, and the page
    (pages/spend/app.js) has its own label for every code the endpoints answer."""
    app_js = (astrbot.plugin_dir / "pages" / PAGE_NAME / "app.js").read_text(encoding="utf-8")
    for code in (ERROR_LEDGER_UNAVAILABLE, ERROR_INTERNAL):
        assert re.search(rf"^\s+{code}: \"[^\"]+\",$", app_js, re.MULTILINE), code
    if not pages_supported():
        pytest.skip("AstrBot 4.14 has no plugin Pages: nothing answers")
    route = f"/{PLUGIN_DIR_NAME}/{PAGE_NAME}/keys"
    view = next(api[1] for api in reversed(astrbot.context.registered_web_apis) if api[0] == route)
    astrbot.plugin.spend.dashboard.close()  # as after an unload: the ledger is gone

    response = await view()

    assert response.status_code == 503
    assert json.loads(response.body) == {
        "status": "error",
        "message": ERROR_LEDGER_UNAVAILABLE,
        "data": None,
    }
