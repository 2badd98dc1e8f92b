"""The web panel as an admin uses it: AstrBot's dashboard in headless Chromium (Debian's).

A real `astrbot run` server with the plugin installed (fresh config = the schema's defaults), a
fake chat LLM and a fake OpenRouter. The browser logs in (the first login makes the admin choose
a new password), opens this plugin's configuration from its card on the plugins page, checks
that every field of _conf_schema.json is shown with its Chinese description, hint and default,
in the schema's (= the README's) order and groups, with the key fields masked; fills in a key,
the API address and a model, saves, and the test checks that AstrBot stored the values,
reloaded the plugin with them, and that the next picture is requested with them. With the
panel switched to English, the plugin's i18n file names and explains every field.
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

from tests.fakes.chat_llm import FakeChatLLM
from tests.fakes.openrouter import IMAGE_MODELS, FakeOpenRouter
from tests.support import astrbot_compat
from tests.support.astrbot_compat import count_plugin_terminations
from tests.support.e2e_server import AstrBotServer
from tests.support.harness import PLUGIN_DIR_NAME, REPO_ROOT
from tests.support.keys import REAL_LOOKING_KEYS
from tests.support.schema import defaults as schema_defaults
from tests.support.schema import field, load_i18n, load_schema, sections
from tests.support.schema import fields as schema_fields

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
    make_server: Callable[[FakeChatLLM, FakeOpenRouter], AstrBotServer],
    *,
    height: int = 1000,
    new_username: str = "",
) -> AsyncIterator[Panel]:
    """Start the fakes, then the server made for them (it needs their ports), and log a
    headless Chromium in (choosing `new_username` at the first login, if given); stop all of
    it afterwards."""
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
        await log_in(panel, new_username)
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


async def dialog_screenshots(panel: Panel, dialog: Any, stem: str) -> list[Path]:
    """The config dialog scrolls inside itself: one picture per screenful, top to bottom."""
    body = dialog.locator(".v-card-text").first
    shots = []
    for index in range(12):
        shots.append(await screenshot(panel, f"{stem}-{index + 1}.png"))
        moved = await body.evaluate(
            "el => { const before = el.scrollTop; el.scrollTop += el.clientHeight * 0.9;"
            " return el.scrollTop !== before; }"
        )
        if not moved:
            break
    await body.evaluate("el => { el.scrollTop = 0; }")
    return shots


async def log_in(panel: Panel, new_username: str = "") -> None:
    """The login form; on the first login AstrBot makes the admin set a new password (and
    offers to change the user name)."""
    page = panel.page
    await page.goto(panel.url)
    await page.locator("input[name=username]").fill(panel.server.username)
    await page.locator("input[name=password]").fill(panel.server.password)
    await page.locator("button[type=submit]").click()
    await page.wait_for_url(re.compile(r"#/(?!auth/login)"))
    if "/auth/setup" in page.url:
        if new_username:
            await page.locator("input[type=text]").first.fill(new_username)
            panel.server.username = new_username
        passwords = page.locator("input[type=password]")
        await passwords.nth(0).fill(NEW_PASSWORD)
        await passwords.nth(1).fill(NEW_PASSWORD)
        await page.get_by_role("button", name="完成设置", exact=True).click()
        panel.server.password = NEW_PASSWORD
    await page.wait_for_url(re.compile(r"#/(?!auth/)"))


async def open_plugin_config(panel: Panel, title: str = "插件配置") -> Any:
    """Plugins page -> this plugin's card -> its settings (cog) button -> the config dialog."""
    page = panel.page
    await page.goto(panel.url + "#/extension")
    card = page.locator(".extension-card", has_text=display_name())
    await card.locator("button:has(i.mdi-cog)").click()
    dialog = page.locator(".v-dialog .v-card", has_text=title)
    await dialog.locator(".config-item").first.wait_for()
    return dialog


async def config_fields(dialog: Any) -> dict[str, Any]:
    """The dialog's field rows by their shown title (the schema's `description`)."""
    rows = dialog.locator(".config-row:has(.property-name)")
    titles = [t.strip() for t in await rows.locator(".property-name").all_inner_texts()]
    assert len(titles) == len(set(titles)), f"duplicate field titles: {titles}"
    return {title: rows.nth(i) for i, title in enumerate(titles)}


async def shown_outline(dialog: Any) -> list[str]:
    """Section titles and field titles, top to bottom, as the dialog shows them."""
    texts = await dialog.locator(".config-title, .property-name").all_inner_texts()
    # The first title is AstrBot's own heading of the whole form ("<plugin> 配置").
    return [t.strip() for t in texts[1:]]


def outline(schema: dict[str, Any], texts: Any = None) -> list[str]:
    """The same outline from the schema (or from an i18n file's `config` part)."""
    shown = []
    for key, spec in schema.items():
        text = (texts or {}).get(key, spec)
        shown.append(text["description"])
        if spec["type"] == "object":
            shown.extend(outline(spec["items"], texts and text)[:])
    return shown


async def control_types(field: Any) -> list[str]:
    return await field.locator(".config-input input").evaluate_all("els => els.map(e => e.type)")


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
    visible = [f for f in schema_fields(schema) if not f.spec.get("invisible")]
    assert await panel.live_config() == schema_defaults(schema)

    dialog = await open_plugin_config(panel)
    fields = await config_fields(dialog)
    await dialog_screenshots(panel, dialog, "dashboard-plugin-config-defaults")

    assert set(fields) == {f.spec["description"] for f in visible}
    for f in visible:
        spec = f.spec
        assert CJK.search(spec["description"]), f"{f.path}: description is not Chinese"
        field = fields[spec["description"]]
        if spec.get("hint"):
            assert CJK.search(spec["hint"]), f"{f.path}: hint is not Chinese"
            shown_hint = await field.locator(".property-hint").inner_text()
            assert spec["hint"] in shown_hint, f.path
            # Nothing before the hint: AstrBot prefixes "‼️" when a field sets obvious_hint.
            assert shown_hint.strip() == spec["hint"], f.path
        assert await shown_value(field, spec) == spec["default"], f.path
    assert "‼" not in await dialog.inner_text()
    await dialog.get_by_role("button", name="关闭", exact=True).click()


async def test_fields_come_in_the_readme_order_and_groups(panel: Panel):
    """Top-level fields and section cards in the schema's order (the README's tables)."""
    schema = load_schema()
    dialog = await open_plugin_config(panel)
    assert await shown_outline(dialog) == outline(schema)
    # Each section is a card of its own, titled and explained, holding exactly its fields.
    for key, spec in sections(schema).items():
        card = dialog.locator(
            ".config-item", has=dialog.page.locator(".config-title", has_text=spec["description"])
        ).last
        assert spec["hint"] in await card.locator(".config-hint").first.inner_text(), key
        titles = await card.locator(".property-name").all_inner_texts()
        assert [t.strip() for t in titles] == [i["description"] for i in spec["items"].values()]
    await dialog.get_by_role("button", name="关闭", exact=True).click()


async def test_key_fields_are_masked(panel: Panel):
    schema = load_schema()
    secret = [f for f in schema_fields(schema) if f.spec.get("secret")]
    assert {f.key for f in secret} == {
        "openrouter_api_keys",
        "openrouter_api_key",
        "nap_transfer_token",
    }
    original = await panel.live_config()
    two_keys = list(REAL_LOOKING_KEYS[:2])
    try:
        await panel.server.update_plugin_config(
            {
                **original,
                "openrouter_api_keys": two_keys,
                "openrouter_api_key": REAL_LOOKING_KEYS[2],
                "delivery": {**original["delivery"], "nap_transfer_token": "receiver-token-1"},
            }
        )
        dialog = await open_plugin_config(panel)
        fields = await config_fields(dialog)
        await dialog_screenshots(panel, dialog, "dashboard-plugin-config-masked")
        shown = await dialog.inner_text()
        for hidden in (*REAL_LOOKING_KEYS[:3], "receiver-token-1"):
            assert hidden not in shown
        # Two keys: the row shows the first as dots and counts the rest ("+1"); the
        # single-value fields are password inputs.
        keys_row = fields[field(schema, "openrouter_api_keys").spec["description"]]
        keys_text = await keys_row.locator(".config-input").inner_text()
        assert keys_text.split()[:2] == ["••••••••", "+1"]
        for key in ("openrouter_api_key", "nap_transfer_token"):
            row = fields[field(schema, key).spec["description"]]
            assert await control_types(row) == ["password"], key
            # The eye icon shows the value on request.
            await row.locator(".v-field__append-inner i").click()
            assert await control_types(row) == ["text"], key
        # Not secret: shown as typed.
        model_row = fields[field(schema, "model_name").spec["description"]]
        assert await control_types(model_row) == ["text"]
        await dialog.get_by_role("button", name="关闭", exact=True).click()
    finally:
        await panel.server.update_plugin_config(original)


async def test_english_panel_uses_the_plugin_i18n(panel: Panel):
    schema = load_schema()
    english = load_i18n("en-US")["config"]
    page = panel.page
    await page.evaluate("localStorage.setItem('astrbot-locale', 'en-US')")
    try:
        await page.reload()
        dialog = await open_plugin_config(panel, title="Extension Configuration")
        assert await shown_outline(dialog) == outline(schema, english)
        fields = await config_fields(dialog)
        for f in schema_fields(schema):
            texts = english[f.section][f.key] if f.section else english[f.key]
            hint = await fields[texts["description"]].locator(".property-hint").inner_text()
            assert texts["hint"] in hint, f.path
            assert not CJK.search(texts["description"]), f.path
        await dialog_screenshots(panel, dialog, "dashboard-plugin-config-english")
        await dialog.locator("button", has_text="Close").last.click()
    finally:
        await page.evaluate("localStorage.removeItem('astrbot-locale')")
        await page.reload()


def title(schema: dict[str, Any], key: str) -> str:
    return field(schema, key).spec["description"]


async def add_list_item(panel: Panel, field: Any, value: str) -> None:
    """A list field's editor: 添加更多 -> type the item, Enter -> 确认."""
    await field.get_by_role("button", name="添加更多", exact=True).click()
    editor = panel.page.locator(".v-dialog .v-card", has_text="修改列表项")
    # The new item's field: a password field for a secret list (the key list), else text.
    new_item = editor.locator("input[type=text], input[type=password]").first
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
        await add_list_item(panel, fields[title(schema, "openrouter_api_keys")], NEW_KEY)
        await (
            fields[title(schema, "custom_api_base")]
            .locator("input")
            .fill(panel.openrouter.base_url)
        )
        await fields[title(schema, "model_name")].locator("input").fill(NEW_MODEL)
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
            spec = field(schema, key).spec
            assert await shown_value(fields[spec["description"]], spec) == value
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
