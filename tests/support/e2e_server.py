"""A real `astrbot run` server with this plugin installed, driven through its dashboard API.

The server is a child process with its OWN AstrBot root (cwd and ASTRBOT_ROOT), separate from
the in-process AstrBot the other tests import. Its chat model is an OpenAI-compatible provider
pointed at a fake LLM, and the plugin's config points at a fake OpenRouter; both fakes run in
the test process. All dashboard calls use aiohttp, so they never block the event loop the
fakes run on.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from tests.support import astrbot_compat, schema
from tests.support.harness import PLUGIN_DIR_NAME, install_plugin

USERNAME = "astrbot"
# AstrBot's policy: 8+ characters with upper case, lower case and a digit.
PASSWORD = "E2eDashboard1"
START_TIMEOUT = 90.0
STOP_TIMEOUT = 10.0
CHAT_TIMEOUT = 60.0
LOG_TAIL_CHARS = 20_000


def astrbot_cli() -> list[str]:
    """The `astrbot` console script of the interpreter running the tests (the project venv)."""
    script = Path(sys.executable).with_name("astrbot")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "astrbot.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def provider_config(llm_base_url: str) -> dict[str, Any]:
    """The partial cmd_config.json: one OpenAI-compatible chat provider, used by default.
    AstrBot fills in every other key from its defaults on first load."""
    return {
        "provider": [
            {
                "id": "fake",
                "type": "openai_chat_completion",
                "provider_type": "chat_completion",
                "enable": True,
                "key": ["sk-fake"],
                "api_base": llm_base_url,
                "model": "fake-model",
                "modalities": ["text", "image", "tool_use"],
            }
        ],
        "provider_settings": {"default_provider_id": "fake"},
    }


def merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`base` updated with `extra`, nested dicts merged key by key."""
    result = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class AstrBotServer:
    """`install=False` starts without the plugin (to install it through the dashboard);
    `config` is merged into the seeded data/cmd_config.json; `cli` is the `astrbot` command to
    run (default: the one of the interpreter running the tests)."""

    def __init__(
        self,
        root: Path,
        *,
        llm_base_url: str,
        plugin_config: Mapping[str, Any] | None = None,
        install: bool = True,
        config: Mapping[str, Any] | None = None,
        cli: Sequence[str] | None = None,
    ) -> None:
        self.root = root
        self.llm_base_url = llm_base_url
        self.plugin_config = dict(plugin_config or {})
        self.install = install
        self.config = dict(config or {})
        self.cli = list(cli) if cli else astrbot_cli()
        self.username = USERNAME  # the dashboard's; a browser test may change both
        self.password = PASSWORD
        self.port = free_port()
        self.log_path = root / "astrbot-server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._token = ""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def plugin_config_path(self) -> Path:
        return self.root / "data" / "config" / f"{PLUGIN_DIR_NAME}_config.json"

    def _env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            ASTRBOT_ROOT=str(self.root),  # the test process points it at its own root
            ASTRBOT_DISABLE_METRICS="1",
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
        )
        env.update(extra)
        return env

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        await self._init_root()
        self._seed_config()
        self._launch()
        self._http = aiohttp.ClientSession()
        try:
            await self._wait_for_login()
        except BaseException:
            await self.stop()
            raise

    async def _init_root(self) -> None:
        # 4.14.6 would otherwise ask (and abort without a TTY): see tests/astrbot_compat.py.
        astrbot_compat.prepare_root(self.root)
        init = await asyncio.create_subprocess_exec(
            *self.cli,
            *astrbot_compat.init_command(),
            cwd=self.root,
            env=self._env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await init.communicate()
        if init.returncode != 0:
            raise RuntimeError(f"astrbot init failed:\n{output.decode(errors='replace')}")

    def _seed_config(self) -> None:
        data = self.root / "data"
        dashboard = astrbot_compat.dashboard_config(host="127.0.0.1", password=PASSWORD)
        cmd_config = merged(provider_config(self.llm_base_url), {"dashboard": dashboard})
        (data / "cmd_config.json").write_text(
            json.dumps(merged(cmd_config, self.config), indent=2), encoding="utf-8"
        )
        if not self.install:
            return
        install_plugin(self.root)
        config = schema.laid_out(self.plugin_config, schema.load_schema())
        # AstrBot writes this file as UTF-8 with a BOM; write it the same way.
        self.plugin_config_path.write_text(
            json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8-sig"
        )

    def _launch(self) -> None:
        env = self._env(
            DASHBOARD_HOST="127.0.0.1",
            DASHBOARD_PORT=str(self.port),
            ASTRBOT_DASHBOARD_INITIAL_PASSWORD=PASSWORD,
            ASTRBOT_TEST_MODE="true",
        )
        # A child inherits an ignored SIGINT (pytest started as a background job); AstrBot
        # only shuts down cleanly, running plugins' terminate(), on SIGINT.
        restore = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*self.cli, "run"],
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_default_sigint if restore else None,
            )

    async def _wait_for_login(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last_error = ""
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"astrbot run exited with {self.process.returncode}\n{self.log_tail()}"
                )
            try:
                body = await self._request(
                    "POST",
                    "/api/auth/login",
                    json={
                        "username": self.username,
                        "password": astrbot_compat.login_password(self.password),
                    },
                    auth=False,
                )
                self._token = body["data"]["token"]
                return
            except (aiohttp.ClientError, KeyError, TypeError, asyncio.TimeoutError) as exc:
                last_error = repr(exc)
            await asyncio.sleep(0.3)
        raise RuntimeError(
            f"dashboard not ready after {START_TIMEOUT:.0f}s ({last_error})\n{self.log_tail()}"
        )

    async def stop(self) -> None:
        """SIGINT (AstrBot's clean shutdown), then kill if it has not stopped in time."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.to_thread(process.wait, STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)
        if self._http is not None:
            await self._http.close()
            self._http = None

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int) -> str:
        """What the server logged after `offset` (a `log_size()` taken earlier)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                text = log.read().decode("utf-8", errors="replace")
        except OSError:
            return f"(no server log at {self.log_path})"
        return f"--- {self.log_path} from byte {offset} ---\n{text[-LOG_TAIL_CHARS:]}"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        text = self.log_text() or "(empty)"
        return f"--- {self.log_path} (last {chars} chars) ---\n{text[-chars:]}"

    # --- dashboard API ---------------------------------------------------------------------------

    async def _request(
        self, method: str, path: str, *, auth: bool = True, **kwargs: Any
    ) -> dict[str, Any]:
        assert self._http is not None, "server not started"
        headers = {"Authorization": f"Bearer {self._token}"} if auth else {}
        timeout = aiohttp.ClientTimeout(total=30)
        async with self._http.request(
            method, self.base_url + path, headers=headers, timeout=timeout, **kwargs
        ) as response:
            response.raise_for_status()
            return await response.json()

    async def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call a dashboard endpoint; return `data` of an `ok` answer, raise on anything else."""
        body = await self._request(method, path, **kwargs)
        if body.get("status") != "ok":
            raise AssertionError(f"{method} {path} answered {body!r}")
        return body.get("data")

    async def plugin_config_view(self) -> dict[str, Any]:
        return await self.api("GET", "/api/config/get", params={"plugin_name": PLUGIN_DIR_NAME})

    async def update_plugin_config(self, config: Mapping[str, Any]) -> None:
        """Save the full config the way the dashboard's form does; AstrBot hot-reloads the
        plugin (terminate(), then a new instance) before it answers."""
        await self.api(
            "POST",
            "/api/config/plugin/update",
            params={"plugin_name": PLUGIN_DIR_NAME},
            json=dict(config),
        )

    async def new_session(self) -> str:
        return (await self.api("GET", "/api/chat/new_session"))["session_id"]

    async def session_history(self, session_id: str) -> list[dict[str, Any]]:
        """The stored messages of a WebChat session (what its web UI shows on reload), among
        them what was sent to the chat later, without a request streaming at the time."""
        data = await self.api("GET", "/api/chat/get_session", params={"session_id": session_id})
        return list(data.get("history") or [])

    async def chat(self, message: str, session_id: str = "") -> list[dict[str, Any]]:
        """Send one WebChat message (in a new session unless given); return the SSE events of
        the answer."""
        session = {"session_id": session_id or await self.new_session()}
        assert self._http is not None
        events: list[dict[str, Any]] = []
        async with self._http.post(
            self.base_url + "/api/chat/send",
            headers={"Authorization": f"Bearer {self._token}"},
            json={"message": message, "session_id": session["session_id"]},
            timeout=aiohttp.ClientTimeout(total=CHAT_TIMEOUT),
        ) as response:
            response.raise_for_status()
            async for raw in response.content:
                line = raw.decode("utf-8").strip()
                if line.startswith("data:"):
                    events.append(json.loads(line.removeprefix("data:").strip()))
        return events

    async def chat_file(self, filename: str) -> bytes:
        """A file WebChat announced as `[IMAGE]<filename>`, fetched the way its web UI does on
        4.14.6 (which streams no attachment ids)."""
        return await self._download("/api/chat/get_file", filename=filename)

    async def attachment(self, attachment_id: str) -> bytes:
        return await self._download("/api/chat/get_attachment", attachment_id=attachment_id)

    async def _download(self, path: str, **params: str) -> bytes:
        assert self._http is not None
        async with self._http.get(
            self.base_url + path,
            headers={"Authorization": f"Bearer {self._token}"},
            params=params,
            timeout=aiohttp.ClientTimeout(total=30),
        ) as response:
            response.raise_for_status()
            return await response.read()
