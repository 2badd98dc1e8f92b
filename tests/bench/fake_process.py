"""The fake OpenRouter as a process of its own, for measurements.

    python tests/bench/fake_process.py <bodies dir>

Prints its port, then answers every chat completion by its prompt: `bench body=<name>
delay=<seconds>` gets the bytes of <bodies dir>/<name> after that many seconds (`tail=<seconds>`:
with that pause before the last 64 KB), as an event stream when the request asks for one
(keep-alives meanwhile) unless the prompt says `plain=1`. GET /bench/last-byte answers
{"at": time.monotonic() when the last answer's last byte was written}. Stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aiohttp import web

from tests.bench.common import prompt_fields
from tests.fakes import openrouter_stream
from tests.fakes.openrouter import FakeOpenRouter, RecordedRequest, Reply


class BenchFake(FakeOpenRouter):
    def routes(self, app: web.Application) -> None:
        super().routes(app)
        app.router.add_get("/bench/last-byte", self._last_byte)

    async def _last_byte(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"at": self.last_byte_at})


async def serve(bodies_dir: Path) -> None:
    bodies = {p.name: p.read_bytes() for p in bodies_dir.iterdir() if p.is_file()}
    # Rendered once: each request then costs the fake only its writes.
    streams = {name: openrouter_stream.render(json.loads(body)) for name, body in bodies.items()}
    fake = BenchFake()

    def answer(recorded: RecordedRequest) -> Reply:
        fake.requests.clear()  # nothing reads them here; reference images would pile up
        fields = prompt_fields(recorded.prompt)
        delay, tail = float(fields.get("delay", 0)), float(fields.get("tail", 0))
        if recorded.streamed and fields.get("plain") != "1":
            stream = streams[fields["body"]]
            return Reply(
                raw_body=stream, content_type="text/event-stream", delay=delay, tail_pause=tail
            )
        return Reply(raw_body=bodies[fields["body"]], delay=delay, tail_pause=tail)

    fake.default = answer
    await fake.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(fake.port, flush=True)
    await stop.wait()
    await fake.stop()


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1])))
