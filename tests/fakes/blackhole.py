"""A black-holed relay on loopback: it accepts every connection, reads what is sent, and never
sends a byte back (a dead proxy or corporate gateway whose TCP still answers)."""

from __future__ import annotations

import asyncio


class BlackHole:
    def __init__(self) -> None:
        self.port = 0
        # The request line of each connection ("POST /api/v1/chat/completions HTTP/1.1"), in
        # the order they were accepted; "" for a connection that sent nothing.
        self.requests: list[str] = []
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def connections(self) -> int:
        return len(self.requests)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = len(self.requests)
        self.requests.append("")
        self._writers.append(writer)
        first = True
        try:
            while data := await reader.read(65536):
                if first:
                    self.requests[index] = data.split(b"\r\n", 1)[0].decode("latin-1")
                    first = False
        except ConnectionError:
            pass

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()
