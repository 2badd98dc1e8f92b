"""A fake NapCat OneBot v11 HTTP API on loopback: records every action call."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

# Any 127/8 address is loopback on Linux, but only 127.0.0.1 and localhost count as "same host"
# for the plugin: this address makes it push files like it would to a remote NapCat host.
REMOTE_NAPCAT = "127.0.0.2"


class FakeNapCat(LoopbackServer):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, dict[str, Any]]] = []

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

    def files_sent(self) -> list[dict[str, Any]]:
        """The `data` of every file segment sent, in order."""
        return [
            segment["data"]
            for _, params in self.calls
            for segment in params.get("message", [])
            if segment.get("type") == "file"
        ]

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/{action}", self._action)

    async def _action(self, request: web.Request) -> web.Response:
        self.calls.append((request.match_info["action"], await request.json()))
        return web.json_response({"status": "ok", "retcode": 0, "data": {"message_id": 1}})
