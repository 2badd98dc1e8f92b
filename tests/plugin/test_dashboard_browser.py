"""The web panel as an admin uses it: AstrBot's dashboard in headless Chromium (Debian's).

A real `astrbot run` server with the plugin installed (fresh config = the schema's defaults), a
fake chat LLM and a fake OpenRouter. The browser logs in (the first login makes the admin choose
a new password), opens this plugin's configuration from its card on the plugins page, checks
that every field of _conf_schema.json is shown with its Chinese description, hint and default,
fills in a key, the API address and a model, saves, and the test checks that AstrBot stored the
values, reloaded the plugin with them, and that the next picture is requested with them.
Screenshots land in tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from tests.conftest import REAL_LOOKING_KEYS
from tests.fakes.chat_llm import FakeChatLLM
from tests.fakes.openrouter import IMAGE_MODELS, FakeOpenRouter
from tests.support import astrbot_compat
from tests.support.astrbot_compat import count_plugin_terminations
from tests.support.e2e_server import USERNAME, AstrBotServer
from tests.support.harness import PLUGIN_DIR_NAME, REPO_ROOT

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
if not CHROMIUM.exists():
    pytest.skip(
        f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium; "
        ".ci/run installs it)",
        allow_module_level=True,
    )
if not astrbot_compat.bundles_web_ui():
    pytest.skip(
        f"AstrBot {astrbot_compat.ASTRBOT_VERSION} ships no web panel (it downloads one on "
        "first run); the browser test runs on the main leg",
        allow_module_level=True,
    )
playwright_api = pytest.importorskip("playwright.async_api", reason="pip install playwright")

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
# As root on this machine, and with no traffic to Google's services (the network is closed).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NEW_PASSWORD = "Browser2Panel"
NEW_KEY = REAL_LOOKING_KEYS[2]
NEW_MODEL = IMAGE_MODELS[1]
CJK = re.compile(r"[\u4e00-\u9fff]")
UI_TIMEOUT_MS = 20_000
SETTLE_TIMEOUT = 20.0


def load_schema() -> dict[str, dict[str, Any]]:
    return json.loads((REPO_ROOT / "_conf_schema.json").read_text(encoding="utf-8"))


def display_name() -> str:
    metadata = yaml.safe_load((REPO_ROOT / "metadata.yaml").read_text(encoding="utf-8"))
    return metadata.get("display_name") or metadata["name"]


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait, bounded, for something the server does after answering the browser."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {SETTLE_TIMEOUT:.0f}s: {what}")
        await asyncio.sleep(0.2)


@dataclass
class Panel:
    server: AstrBotServer
    llm: FakeChatLLM
    openrouter: FakeOpenRouter
    page: Any  # playwright Page, logged in

    @property
    def url(self) -> str:
        return self.server.base_url + "/"

    def saved_config(self) -> dict[str, Any]:
        return json.loads(self.server.plugin_config_path.read_text(encoding="utf-8-sig"))

    async def live_config(self) -> dict[str, Any]:
        return (await self.server.plugin_config_view())["config"]


@contextlib.asynccontextmanager
async def open_panel(
    make_server: Callable[[FakeChatLLM, FakeOpenRouter], AstrBotServer], *, height: int = 1000
) -> AsyncIterator[Panel]:
    """Start the fakes, then the server made for them (it needs their ports), and log a
    headless Chromium in; stop all of it afterwards."""
    llm, openrouter = FakeChatLLM(), FakeOpenRouter()
    await llm.start()
    await openrouter.start()
    server = make_server(llm, openrouter)
    playwright = await playwright_api.async_playwright().start()
    browser = None
    try:
        await server.start()
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        context = await browser.new_context(
            locale="zh-CN", viewport={"width": 1400, "height": height}
        )
        context.set_default_timeout(UI_TIMEOUT_MS)
        # The panel links a few CDN scripts; nothing may leave this machine.
        await context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), _abort)
        page = await context.new_page()
        panel = Panel(server, llm, openrouter, page)
        await log_in(panel)
        yield panel
    finally:
        if browser is not None:
            await browser.close()
        await playwright.stop()
        await server.stop()
        await llm.stop()
        await openrouter.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def panel_module(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Panel]:
    root = tmp_path_factory.mktemp("astrbot-browser")
    async with open_panel(lambda llm, _: AstrBotServer(root, llm_base_url=llm.base_url)) as panel:
        yield panel


async def _abort(route: Any) -> None:
    await route.abort()


@pytest_asyncio.fixture(loop_scope="session")
async def panel(panel_module: Panel, request: pytest.FixtureRequest) -> AsyncIterator[Panel]:
    """The module's logged-in panel; on failure the server log and a screenshot are kept."""
    panel_module.llm.reset()
    panel_module.openrouter.reset()
    offset = panel_module.server.log_size()
    failed_before = request.session.testsfailed
    yield panel_module
    if request.session.testsfailed > failed_before:
        print(panel_module.server.log_since(offset))
        shot = await screenshot(panel_module, f"{request.node.name}-failed.png")
        print(f"screenshot at the failure: {shot}")


async def screenshot(panel: Panel, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    await panel.page.screenshot(path=str(path), full_page=True)
    return path


async def log_in(panel: Panel) -> None:
    """The login form; on the first login AstrBot makes the admin set a new password."""
    page = panel.page
    await page.goto(panel.url)
    await page.locator("input[name=username]").fill(USERNAME)
    await page.locator("input[name=password]").fill(panel.server.password)
    await page.locator("button[type=submit]").click()
    await page.wait_for_url(re.compile(r"#/(?!auth/login)"))
    if "/auth/setup" in page.url:
        passwords = page.locator("input[type=password]")
        await passwords.nth(0).fill(NEW_PASSWORD)
        await passwords.nth(1).fill(NEW_PASSWORD)
        await page.get_by_role("button", name="完成设置", exact=True).click()
        panel.server.password = NEW_PASSWORD
    await page.wait_for_url(re.compile(r"#/(?!auth/)"))


async def open_plugin_config(panel: Panel) -> Any:
    """Plugins page -> this plugin's card -> its settings (cog) button -> the config dialog."""
    page = panel.page
    await page.goto(panel.url + "#/extension")
    card = page.locator(".extension-card", has_text=display_name())
    await card.locator("button:has(i.mdi-cog)").click()
    dialog = page.locator(".v-dialog .v-card", has_text="插件配置")
    await dialog.locator(".config-item").first.wait_for()
    return dialog


async def config_fields(dialog: Any) -> dict[str, Any]:
    """The dialog's field rows by their shown title (the schema's `description`)."""
    items = dialog.locator(".config-item")
    titles = [t.strip() for t in await items.locator(".property-name").all_inner_texts()]
    assert len(titles) == len(set(titles)), f"duplicate field titles: {titles}"
    return {title: items.nth(i) for i, title in enumerate(titles)}


async def shown_value(field: Any, spec: dict[str, Any]) -> Any:
    """What the field's control shows, as the schema type's Python value."""
    controls = (
        await field.locator(".config-input")
        .locator("input, textarea")
        .evaluate_all("els => els.map(e => ({type: e.type, value: e.value, checked: e.checked}))")
    )
    kind = spec["type"]
    if kind == "bool":
        [control] = [c for c in controls if c["type"] == "checkbox"]
        return control["checked"]
    [control] = controls
    if kind == "int":
        return int(control["value"])
    if kind == "float":
        return float(control["value"])
    if kind in ("string", "text"):
        return control["value"]
    if kind == "list":  # the row shows the items joined; the editor dialog lists them
        return [item.strip() for item in control["value"].split(",") if item.strip()]
    raise AssertionError(f"teach shown_value() how a {kind!r} field renders ({spec})")


async def test_every_config_field_is_shown_with_its_chinese_text_and_default(panel: Panel):
    schema = load_schema()
    visible = {key: spec for key, spec in schema.items() if not spec.get("invisible")}
    assert await panel.live_config() == {key: spec["default"] for key, spec in schema.items()}

    dialog = await open_plugin_config(panel)
    fields = await config_fields(dialog)
    await screenshot(panel, "dashboard-plugin-config-defaults.png")

    assert set(fields) == {spec["description"] for spec in visible.values()}
    for key, spec in visible.items():
        assert CJK.search(spec["description"]), f"{key}: description is not Chinese"
        field = fields[spec["description"]]
        if spec.get("hint"):
            assert CJK.search(spec["hint"]), f"{key}: hint is not Chinese"
            shown_hint = await field.locator(".property-hint").inner_text()
            assert spec["hint"] in shown_hint, key
        assert await shown_value(field, spec) == spec["default"], key
    await dialog.get_by_role("button", name="关闭", exact=True).click()


async def add_list_item(panel: Panel, field: Any, value: str) -> None:
    """A list field's editor: 添加更多 -> type the item, Enter -> 确认."""
    await field.get_by_role("button", name="添加更多", exact=True).click()
    editor = panel.page.locator(".v-dialog .v-card", has_text="修改列表项")
    new_item = editor.locator("input[type=text]").first
    await new_item.fill(value)
    await new_item.press("Enter")
    await editor.get_by_role("button", name="确认", exact=True).click()
    await editor.wait_for(state="detached")


async def test_values_saved_in_the_panel_reach_the_running_plugin(panel: Panel):
    schema = load_schema()
    server = panel.server
    original = await panel.live_config()
    reloads_before = count_plugin_terminations(server.log_text(), PLUGIN_DIR_NAME)
    try:
        dialog = await open_plugin_config(panel)
        fields = await config_fields(dialog)
        await add_list_item(panel, fields[schema["openrouter_api_keys"]["description"]], NEW_KEY)
        await (
            fields[schema["custom_api_base"]["description"]]
            .locator("input")
            .fill(panel.openrouter.base_url)
        )
        await fields[schema["model_name"]["description"]].locator("input").fill(NEW_MODEL)
        await dialog.get_by_role("button", name="保存并关闭", exact=True).click()
        await dialog.wait_for(state="detached")

        expected = {
            "openrouter_api_keys": [NEW_KEY],
            "custom_api_base": panel.openrouter.base_url,
            "model_name": NEW_MODEL,
        }

        async def saved_on_disk() -> bool:
            saved = panel.saved_config()
            return all(saved.get(k) == v for k, v in expected.items())

        await eventually(saved_on_disk, "the plugin's config file holds the new values")
        # Only the edited keys changed.
        assert panel.saved_config() == {**original, **expected}
        assert await panel.live_config() == {**original, **expected}

        async def reloaded() -> bool:
            terminations = count_plugin_terminations(server.log_text(), PLUGIN_DIR_NAME)
            return terminations == reloads_before + 1

        await eventually(reloaded, "AstrBot reloaded the plugin once")

        # The page shows the saved values when opened again.
        dialog = await open_plugin_config(panel)
        fields = await config_fields(dialog)
        for key, value in expected.items():
            assert await shown_value(fields[schema[key]["description"]], schema[key]) == value
        shot = await screenshot(panel, "dashboard-plugin-config-saved.png")
        assert shot.stat().st_size > 0
        await dialog.get_by_role("button", name="关闭", exact=True).click()

        # The next picture is asked for with the new key, at the new address, of the new model.
        await server.chat("画一只在屋顶上看星星的猫")
        [upstream] = panel.openrouter.chat_requests()
        assert upstream.key == NEW_KEY
        assert upstream.body["model"] == NEW_MODEL
        assert upstream.path == "/api/v1/chat/completions"
    finally:
        await server.update_plugin_config(original)
