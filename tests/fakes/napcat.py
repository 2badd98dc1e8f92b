"""A fake NapCat OneBot v11 HTTP API on loopback: records every action call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class FakeNapCat:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def api_root(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def images_sent(self) -> list[str]:
        """The `file` of every image segment sent, in order."""
        return [
            segment["data"]["file"]
            for _, params in self.calls
            for segment in params.get("message", [])
            if segment.get("type") == "image"
        ]

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{action}", self._action)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _action(self, request: web.Request) -> web.Response:
        self.calls.append((request.match_info["action"], await request.json()))
        return web.json_response({"status": "ok", "retcode": 0, "data": {"message_id": 1}})
