"""The plugin's spend page in AstrBot's dashboard, in headless Chromium (Debian's).

A real `astrbot run` with the plugin installed, its ledger seeded before the start with
generations of today and the days before, a few of their pictures still in images/, two keys of
which the fake OpenRouter knows the limit of one. The browser logs in, opens the page from the
dashboard's menu, and the test reads the numbers the page shows: they must be the seeded ones.
The page's JSON is behind the dashboard's login. Screenshots land in tests/artifacts/.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.fakes.chat_llm import FakeChatLLM
from tests.fakes.openrouter import FakeOpenRouter, Reply, key_info, make_png
from tests.plugin.test_dashboard_browser import Panel, open_panel, screenshot
from tests.support.e2e_server import AstrBotServer
from tests.support.harness import PLUGIN_DIR_NAME
from tests.support.keys import REAL_LOOKING_KEYS
from utils.core.charges import Outcome
from utils.core.keys import mask_key
from utils.spend.ledger import Ledger, LedgerEntry

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

PLUGIN_NAME = PLUGIN_DIR_NAME  # metadata.yaml's name; it names the data directory and routes
KEYS = list(REAL_LOOKING_KEYS[:2])
FLASH, PRO = "google/gemini-2.5-flash-image", "google/gemini-3-pro-image-preview"
KEPT = ("gemini_image_seed_a.png", "gemini_image_seed_b.png", "gemini_image_seed_c.png")
GONE = "gemini_image_seed_gone.png"  # recorded, but already removed by the cleanup


def seed_rows(now: float) -> list[LedgerEntry]:
    """Today's rows lie between local midnight and `now`; older ones at noon of their day."""
    midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
    since = now - midnight.timestamp()

    def today(n: int) -> float:
        return midnight.timestamp() + since * n / 6

    def noon(days_ago: int) -> float:
        return (midnight - timedelta(days=days_ago)).replace(hour=12).timestamp()

    def row(at: float, user: str, group: str, pictures: int, cost: float | None, **kw: Any):
        return LedgerEntry(
            at=at,
            platform="aiocqhttp",
            user_id=user,
            group_id=group,
            model=kw.get("model", FLASH),
            pictures=pictures,
            size="1K",
            cost=cost,
            key_mask=mask_key(KEYS[0]),
            files=kw.get("files", ()),
            outcome=kw.get("outcome", Outcome.PICTURE),
        )

    return [
        row(today(1), "10001", "20002", 1, 0.039, files=(KEPT[0],)),
        row(today(2), "10001", "20002", 2, 0.078, files=(KEPT[1], GONE)),
        row(today(3), "10002", "20002", 1, None),  # a gateway that reported no cost
        row(today(4), "10003", "", 1, 0.134, model=PRO, files=(KEPT[2],)),
        row(today(5), "10001", "20002", 0, 0.039, outcome=Outcome.REFUSAL),  # billed, no picture
        row(noon(1), "10001", "30003", 4, 0.156),
        row(noon(3), "10004", "30003", 1, 0.039),
        row(noon(10), "10005", "40004", 2, 0.5),
        row(noon(20), "10006", "40004", 9, 9.0),  # outside the 14 days of the chart
    ]


class SeededServer(AstrBotServer):
    """Pictures are put into the installed plugin's images/ before AstrBot starts."""

    def _seed_config(self) -> None:
        super()._seed_config()
        images = self.root / "data" / "plugins" / PLUGIN_DIR_NAME / "images"
        images.mkdir(exist_ok=True)
        for n, name in enumerate(KEPT):
            (images / name).write_bytes(make_png(f"seeded picture {n}", size=(256, 256)))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def spend_panel(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Panel]:
    root = tmp_path_factory.mktemp("astrbot-spend-page")
    ledger = Ledger(root / "data" / "plugin_data" / PLUGIN_NAME)
    await ledger.open()
    for row in seed_rows(time.time()):
        await ledger.record(row)
    await ledger.close()

    def make_server(llm: FakeChatLLM, openrouter: FakeOpenRouter) -> AstrBotServer:
        openrouter.key_infos[KEYS[0]] = key_info(
            limit=10.0, limit_remaining=6.25, usage_daily=0.251
        )
        openrouter.key_replies[KEYS[1]] = Reply.error(404, "Not Found")  # a gateway without /key
        return SeededServer(
            root,
            llm_base_url=llm.base_url,
            plugin_config={
                "openrouter_api_keys": KEYS,
                "custom_api_base": openrouter.base_url,
                "user_daily_limit": 20,
                "daily_budget_usd": 5,
            },
        )

    async with open_panel(make_server, height=2000) as panel:
        yield panel


async def open_spend_page(panel: Panel) -> Any:
    """The dashboard's menu lists plugin Pages; ours opens in the page frame.

    4.28 files them under a "插件页面" group; 4.29 puts a lone plugin's page straight into the
    menu under its name (and calls it a plugin view)."""
    page = panel.page
    await page.goto(panel.url + "#/extension")
    menu = page.locator(".v-navigation-drawer")
    entry = menu.locator(".v-list-item", has_text="Gemini").first
    group = menu.locator(".v-list-group", has_text="插件页面")
    if await group.count() and not await entry.is_visible():
        await group.locator(".v-list-item", has_text="插件页面").first.click()
    await entry.click()
    # 4.28: #/plugin-page/<name>/<page> in iframe.plugin-page-frame; 4.29: plugin-view.
    await page.wait_for_url(re.compile(rf"#/plugin-(?:page|view)/{PLUGIN_NAME}/spend"))
    frame = page.frame_locator("iframe.plugin-page-frame, iframe.plugin-view-frame")
    await frame.locator("body[data-loaded=true]").wait_for()
    return frame


async def texts(locator: Any) -> list[str]:
    return [t.strip() for t in await locator.all_inner_texts()]


async def test_the_page_shows_the_ledgers_numbers(spend_panel: Panel):
    frame = await open_spend_page(spend_panel)
    try:
        assert await frame.locator("#error").is_hidden()
        assert await frame.locator("#today-pictures").inner_text() == "5 张"
        assert await frame.locator("#today-cost").inner_text() == "$0.29"
        assert await frame.locator("#today-cost-note").inner_text() == (
            "另有 1 次未报告花费，另有 1 次未出图但已计费 $0.039"
        )
        assert await frame.locator("#week-pictures").inner_text() == "10 张"
        assert await frame.locator("#week-cost").inner_text() == "$0.485"
        assert await frame.locator("#caps").inner_text() == "每人 20 张，全部 $5.00"

        bars = frame.locator("#chart rect.bar")
        assert await bars.count() == 14
        heights = [int(v) for v in await bars.evaluate_all("bs => bs.map(b => b.dataset.pictures)")]
        assert heights[-1] == 5 and heights[-2] == 4 and heights[-4] == 1 and heights[-11] == 2
        assert sum(heights) == 12  # the row of 20 days ago is outside the chart
        dots = frame.locator("#chart circle.spend-dot")
        costs = await dots.evaluate_all("ds => ds.map(d => Number(d.dataset.cost))")
        assert round(sum(costs), 3) == round(0.29 + 0.156 + 0.039 + 0.5, 3)

        users = await texts(frame.locator("#top-users tbody tr"))
        assert [u.split("\t")[:4] for u in users] == [
            ["1", "10001", "aiocqhttp", "3 张"],
            ["2", "10003", "aiocqhttp", "1 张"],
            ["3", "10002", "aiocqhttp", "1 张"],
        ]
        assert users[2].endswith("未知")
        groups = await texts(frame.locator("#top-groups tbody tr"))
        assert [g.split("\t")[1:4] for g in groups] == [
            ["20002", "aiocqhttp", "4 张"],
            ["私聊", "aiocqhttp", "1 张"],
        ]

        keys = await texts(frame.locator("#keys tbody tr"))
        assert keys[0].split("\t") == [
            mask_key(KEYS[0]),
            "正常（尚未使用）",
            "0",
            "0",
            "0",
            "$6.25 / $10.00",
            "$0.251",
        ]
        assert keys[1].split("\t")[0] == mask_key(KEYS[1]) and keys[1].endswith("未知\t未知")
        assert {r.key for r in spend_panel.openrouter.key_requests()} == set(KEYS)

        thumbs = frame.locator("#latest figure")
        assert await thumbs.count() == len(KEPT)  # the removed picture is not shown
        sources = await frame.locator("#latest img").evaluate_all("is => is.map(i => i.src)")
        assert all(s.startswith("data:image/jpeg;base64,") for s in sources)
        assert all(
            await frame.locator("#latest img").evaluate_all(
                "is => is.map(i => i.complete && i.naturalWidth > 0)"
            )
        )
        captions = await texts(frame.locator("#latest figcaption"))
        assert "10003 · 私聊 · $0.134" in captions[0]  # newest first
    finally:
        shot = await screenshot(spend_panel, "dashboard-spend-page.png")
    assert shot.stat().st_size > 0
    page_text = await frame.locator("body").inner_text()
    assert not any(key in page_text for key in KEYS)


async def test_the_pages_json_is_behind_the_dashboard_login(spend_panel: Panel):
    server = spend_panel.server
    path = f"/api/v1/plugins/extensions/{PLUGIN_NAME}/spend/overview"
    data = await server.api("GET", path, params={"days": 3})
    assert [d["pictures"] for d in data["days"]] == [0, 4, 5]
    assert data["today_totals"] == {
        "generations": 5,
        "pictures": 5,
        "cost": 0.29,
        "unknown": 1,
        "without_picture": 1,
        "without_picture_cost": 0.039,
        "undelivered": 0,
        "pending": 0,
    }
    async with aiohttp.ClientSession() as anonymous:
        for route in ("overview", "keys", "latest"):
            url = f"{server.base_url}/api/v1/plugins/extensions/{PLUGIN_NAME}/spend/{route}"
            async with anonymous.get(url) as response:
                assert response.status == 401, route
                assert "10001" not in await response.text()


async def switch_dashboard_language(panel: Panel, language: str) -> None:
    """The dashboard's own switch: 选项 / Options -> 语言 / Language -> the language."""
    page = panel.page
    await page.locator(".v-app-bar, header").get_by_text(re.compile("^(选项|Options)$")).click()
    await page.locator(".v-overlay-container").get_by_text(re.compile("^(语言|Language)$")).hover()
    await page.locator(".v-overlay-container").get_by_text(language, exact=True).click()


async def test_the_page_follows_the_dashboards_language(spend_panel: Panel):
    """Opened in an English dashboard it is English; switched back live, it is Chinese."""
    page = spend_panel.page
    await page.evaluate("localStorage.setItem('astrbot-locale', 'en-US')")
    try:
        await page.reload()
        frame = await open_spend_page(spend_panel)
        body = frame.locator("body")
        assert await body.get_attribute("data-lang") == "en"
        assert await frame.locator("h1").inner_text() == "Image spend"
        assert await frame.locator("#today-pictures").inner_text() == "5 pictures"
        assert await frame.locator("#today-cost").inner_text() == "$0.29"
        assert await frame.locator("#today-cost-note").inner_text() == (
            "1 more without a reported cost, plus 1 billed without a picture: $0.039"
        )
        assert await frame.locator("#caps").inner_text() == "20 pictures per user, $5.00 in all"
        heads = await texts(frame.locator("#keys thead th"))
        assert heads == [
            "Key",
            "State",
            "Succeeded",
            "Failed",
            "In flight",
            "Remaining",
            "Used today",
        ]
        keys = await texts(frame.locator("#keys tbody tr"))
        assert keys[0].split("\t")[1] == "OK (not used yet)"
        assert keys[1].endswith("unknown\tunknown")
        groups = await texts(frame.locator("#top-groups tbody tr"))
        assert [g.split("\t")[1:4] for g in groups] == [
            ["20002", "aiocqhttp", "4 pictures"],
            ["private chat", "aiocqhttp", "1 picture"],
        ]
        shown = await body.inner_text()
        assert not re.search(r"[\u4e00-\u9fff]", shown), shown
        await screenshot(spend_panel, "dashboard-spend-page-english.png")

        await switch_dashboard_language(spend_panel, "简体中文")
        await frame.locator("body[data-lang=zh-CN]").wait_for()
        assert await frame.locator("h1").inner_text() == "画图花费统计"
        assert await frame.locator("#today-pictures").inner_text() == "5 张"
        assert await frame.locator("#caps").inner_text() == "每人 20 张，全部 $5.00"
    finally:
        await page.evaluate("localStorage.removeItem('astrbot-locale')")
        await page.reload()
