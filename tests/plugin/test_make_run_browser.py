"""`make run` as a new admin meets it, in headless Chromium (Debian's).

The script itself (.ci/astrbot-run.sh) starts AstrBot 4.29.3 in a temporary root on a free port,
with the plugin's config pointing at a fake OpenRouter and its ledger seeded. The browser logs
in, and at the first login chooses a new user name, as AstrBot asks; WebChat's sender is then
that name, which is no bot admin yet: an admin command is answered with the plugin's sentence.
`make run` started again adds the name to admins_id, and the same command answers. The spend
page opens from the dashboard's menu (the plugin directory is one AstrBot's page service
accepts), and `/画图统计` shows in WebChat's own renderer. Screenshots land in tests/artifacts/.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.fakes.chat_llm import FakeChatLLM
from tests.fakes.openrouter import FakeOpenRouter, key_info
from tests.plugin.test_dashboard_browser import Panel, open_panel, screenshot
from tests.plugin.test_spend_page import KEYS, PLUGIN_NAME, open_spend_page, seed_rows, texts
from tests.support import schema
from tests.support.e2e_server import AstrBotServer
from tests.support.harness import PLUGIN_DIR_NAME, REPO_ROOT
from utils.spend.ledger import Ledger

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SCRIPT = REPO_ROOT / ".ci" / "astrbot-run.sh"
NEW_USER = "alice"
STATS = "/画图统计"
REFUSAL = f"{STATS} 是管理员指令，只有机器人管理员可以使用（你的 ID：{NEW_USER}）。"
REPLY_TIMEOUT_MS = 20_000


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class MakeRunServer(AstrBotServer):
    """`make run` (.ci/astrbot-run.sh) with ASTRBOT_RUN_ROOT and DASHBOARD_PORT set, driven
    through the same dashboard API as the other servers of the tests."""

    def _script_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "ASTRBOT_RUN_ROOT": str(self.root),
            "DASHBOARD_PORT": str(self.port),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    async def _init_root(self) -> None:
        done = await asyncio.to_thread(
            subprocess.run,
            ["bash", str(SCRIPT), "--prepare"],
            env=self._script_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"make run --prepare failed:\n{done.stdout}\n{done.stderr}")
        self.password = (self.root / "dashboard-password.txt").read_text().strip()

    def _seed_config(self) -> None:
        """The plugin's config and ledger; AstrBot's own config is make run's business."""
        config = schema.laid_out(self.plugin_config, schema.load_schema())
        self.plugin_config_path.parent.mkdir(parents=True, exist_ok=True)
        self.plugin_config_path.write_text(
            json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8-sig"
        )

    def _launch(self) -> None:
        restore = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                ["bash", str(SCRIPT)],
                env=self._script_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_default_sigint if restore else None,
            )

    async def log_in_as_the_dashboard_user(self) -> None:
        """A new token for the user name and password chosen in the browser: WebChat messages
        sent through the API come from that user then, as from the Chat page."""
        await self._wait_for_login()

    async def restart(self) -> None:
        """Ctrl-C and `make run` again."""
        await self.stop()
        self._launch()
        import aiohttp

        self._http = aiohttp.ClientSession()
        await self._wait_for_login()


async def seed_ledger(root: Path) -> None:
    ledger = Ledger(root / "data" / "plugin_data" / PLUGIN_NAME)
    await ledger.open()
    for row in seed_rows(time.time()):
        await ledger.record(row)
    await ledger.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def make_run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Panel]:
    root = tmp_path_factory.mktemp("make-run")
    await seed_ledger(root)

    def make_server(_: FakeChatLLM, openrouter: FakeOpenRouter) -> AstrBotServer:
        openrouter.key_infos[KEYS[0]] = key_info(
            limit=10.0, limit_remaining=6.25, usage_daily=0.251
        )
        return MakeRunServer(
            root,
            llm_base_url="",
            plugin_config={
                "openrouter_api_keys": KEYS,
                "custom_api_base": openrouter.base_url,
                "user_daily_limit": 20,
                "user_daily_budget_usd": 0.5,
                "daily_budget_usd": 5,
            },
        )

    async with open_panel(make_server, height=1300, new_username=NEW_USER) as panel:
        yield panel


def said(events: list[dict[str, Any]]) -> str:
    """The text a WebChat answer streamed (a command's reply comes as plain text)."""
    return "".join(
        e["data"] for e in events if e.get("type") == "plain" and isinstance(e.get("data"), str)
    )


async def ask_in_webchat(panel: Panel, message: str) -> Any:
    """Type a message on the Chat page and wait for the bot's rendered answer."""
    page = panel.page
    await page.goto(panel.url + "#/chat")
    box = page.locator("textarea").first
    await box.fill(message)
    await page.locator("button.bg-primary").last.click()
    answer = page.locator(".message-row.from-bot .markdown-content").last
    await answer.wait_for(timeout=REPLY_TIMEOUT_MS)
    await page.wait_for_timeout(500)  # the renderer settles (it streams in)
    return answer


async def test_make_run_makes_the_dashboard_user_an_admin_and_serves_the_page(make_run: Panel):
    server = make_run.server
    assert server.username == NEW_USER  # chosen at the first login

    await server.log_in_as_the_dashboard_user()
    # Not an admin yet: the plugin's one sentence, with the ID to add.
    assert said(await server.chat(STATS)) == REFUSAL

    await server.restart()  # Ctrl-C, make run: the new name joins admins_id
    banner = server.log_text()
    assert f"机器人管理员 Admin: {NEW_USER} （刚加入 admins_id" in banner
    cmd_config = json.loads(
        (server.root / "data" / "cmd_config.json").read_text(encoding="utf-8-sig")
    )
    assert NEW_USER in cmd_config["admins_id"]

    answer = said(await server.chat(STATS))
    assert answer.startswith("📊 画图统计"), answer
    assert "近 7 天" in answer

    # The page, from the menu of the dashboard make run started.
    await make_run.page.reload()
    frame = await open_spend_page(make_run)
    assert await frame.locator("#error").is_hidden()
    assert await frame.locator("#today-pictures").inner_text() == "5 张"
    assert await frame.locator("#today-cost").inner_text() == "$0.29"  # a refusal's 0.039 too
    keys = await texts(frame.locator("#keys tbody tr"))
    assert keys[0].split("\t")[5] == "$6.25 / $10.00"
    await make_run.page.mouse.move(1390, 5)  # no menu tooltip over the page
    shot = await screenshot(make_run, "make-run-spend-page.png")
    assert shot.stat().st_size > 0
    mount = server.root / "data" / "plugins" / PLUGIN_DIR_NAME
    assert mount.is_dir() and not mount.is_symlink()


async def test_stats_in_webchat_render_as_written(make_run: Panel):
    """WebChat renders bot messages as Markdown with maths: two `$` in one paragraph became a
    formula. The answer must show as the plugin wrote it, line by line, with no formula."""
    server = make_run.server
    written = said(await server.chat(STATS))
    answer = await ask_in_webchat(make_run, STATS)
    await screenshot(make_run, "webchat-stats.png")
    assert await answer.locator(".katex, math, mjx-container").count() == 0
    shown = [line.strip() for line in (await answer.inner_text()).split("\n") if line.strip()]
    lines = [line.strip() for line in written.split("\n") if line.strip()]
    assert shown[1:] == lines[1:]  # the title's date moves on between the two answers
    assert "$" not in written
    assert re.search(r"\d 美元", written)


async def test_model_prices_in_webchat_render_as_written(make_run: Panel):
    server = make_run.server
    written = said(await server.chat("/画图模型"))
    assert "美元/百万 token" in written and "$" not in written
    answer = await ask_in_webchat(make_run, "/画图模型")
    await screenshot(make_run, "webchat-models.png")
    assert await answer.locator(".katex, math, mjx-container").count() == 0
    shown = await answer.inner_text()
    for line in written.split("\n"):
        assert line.strip() in shown, line
