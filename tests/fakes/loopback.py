"""Base of the fake services: an aiohttp app on 127.0.0.1 at a free port."""

from __future__ import annotations

from aiohttp import web


class LoopbackServer:
    """Subclasses add their routes in `routes()`; `start()` binds a free loopback port."""

    client_max_size = 64 * 1024 * 1024

    def __init__(self) -> None:
        self.port = 0
        self._runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application(client_max_size=self.client_max_size)
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
