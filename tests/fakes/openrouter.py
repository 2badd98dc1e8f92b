"""A fake OpenRouter on loopback that speaks the real chat-completions wire format.

Successful answers carry a real PNG whose `prompt` text chunk holds the prompt of the request, so
a test can tell which request an image answers. Faults are scripted per request with `enqueue()`
or for every request with `default`; every request is recorded in `requests`.

It also serves plain files under /files/<name> (`serve()`), standing in for a chat platform's
image CDN (reference images) and for image URLs inside answers.

A request with `"stream": true` gets its successful answer (and an `error` object with status
200) as an event stream, the way OpenRouter sends it (tests/fakes/openrouter_stream.py); error
statuses stay plain JSON, as they come before a stream starts.

Every streamed answer names its generation in `X-Generation-Id`, as OpenRouter's do, and
`GET /api/v1/generation?id=…` tells what a generation cost: only the ones a test registered in
`generations`, and like the real one only after a few look-ups (404 until then: OpenRouter
knows a generation a few seconds after it ended).

The Gemini 3 image models answer with `reasoning_details` beside their picture, as OpenRouter
relays them (a reasoning text and an encrypted thought signature, made from the prompt), in
`message.reasoning_details` or, streamed, in pieces of `delta.reasoning_details`.

The Image API is served too (tests/fakes/openrouter_images.py): its discovery, its providers'
prices and POST /api/v1/images, scripted with the same `enqueue()` / `default`. Unscripted, both
APIs refuse what OpenRouter would: chat completions a listed image-only model asked for text
too (404 about output modalities) or pictures sent to a model that reads none; the Image API a
model it does not list or a parameter value its descriptor lacks.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import io
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image, PngImagePlugin

from tests.fakes import openrouter_images, openrouter_stream
from tests.fakes.loopback import LoopbackServer

IMAGE_MODELS = (
    "google/gemini-2.5-flash-image",
    "google/gemini-3-pro-image-preview",
    "google/gemini-3.1-flash-image-preview",
)
TEXT_MODELS = ("openai/gpt-4o-mini",)
# usage.cost (USD) of a generated answer unless a test says otherwise; OpenRouter's order of
# magnitude for one 1K picture.
DEFAULT_COST = 0.039
_TAIL = 64 * 1024  # what Reply.tail_pause holds back
_WRITE_CHUNK = 1024 * 1024
# Listed only when the client asks for every output modality (OpenRouter lists text-output
# models by default). FLUX.2 Pro is on the Image API too.
IMAGE_ONLY_MODELS = (openrouter_images.FLUX_PRO,)
# An image model that reads no pictures (made up): text in, image out.
TEXT_INPUT_MODELS = ("acme/text-only-painter",)
# Shaped like OpenRouter's entries (names and Gemini prices as listed there in 2026; the
# others made up). Prices are USD per token; `request` per request.
_LISTING: dict[str, dict[str, Any]] = {
    IMAGE_MODELS[0]: {
        "name": "Google: Nano Banana (Gemini 2.5 Flash Image)",
        "pricing": {"prompt": "0.0000003", "completion": "0.0000025", "image": "0.0000003"},
    },
    IMAGE_MODELS[1]: {
        "name": "Google: Nano Banana Pro (Gemini 3 Pro Image Preview)",
        "pricing": {"prompt": "0.000002", "completion": "0.000012", "image": "0.000002"},
    },
    IMAGE_MODELS[2]: {
        "name": "Google: Nano Banana 2 (Gemini 3.1 Flash Image Preview)",
        "pricing": {"prompt": "0.0000005", "completion": "0.000003", "image_output": "0.00006"},
    },
    IMAGE_ONLY_MODELS[0]: {
        "name": "Black Forest Labs: FLUX.2 Pro",
        "pricing": {"prompt": "0", "completion": "0", "request": "0.03"},
    },
    TEXT_INPUT_MODELS[0]: {
        "name": "Acme: Text-only Painter",
        "pricing": {"prompt": "0", "completion": "0", "request": "0.02"},
    },
}
MODALITIES_404 = "No endpoints found that support the requested output modalities: image, text"
# The models that return reasoning details with their pictures.
REASONING_MODELS = IMAGE_MODELS[1:]


def reasoning_details_for(prompt: str) -> list[dict[str, Any]]:
    """What a Gemini 3 image model's answer carries for `prompt`: a reasoning text and an
    encrypted thought signature (opaque base64, as OpenRouter passes Google's on)."""
    signature = base64.b64encode(hashlib.sha256(prompt.encode()).digest() * 24).decode()
    return [
        {
            "type": "reasoning.text",
            "text": f"Planning the picture: {prompt}. Composition first, then light.",
            "format": "google-gemini-v1",
            "index": 0,
        },
        {
            "type": "reasoning.encrypted",
            "data": signature,
            "id": "tool_sig_" + hashlib.sha256(prompt.encode()).hexdigest()[:12],
            "format": "google-gemini-v1",
            "index": 1,
        },
    ]


def make_png(prompt: str, size: tuple[int, int] = (64, 64)) -> bytes:
    """A PNG whose colour and `prompt` text chunk come from the prompt."""
    digest = hashlib.sha256(prompt.encode()).digest()
    image = Image.new("RGB", size, tuple(digest[:3]))
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", prompt)
    out = io.BytesIO()
    image.save(out, "PNG", pnginfo=info)
    return out.getvalue()


def png_prompt(data: bytes) -> str | None:
    with Image.open(io.BytesIO(data)) as image:
        return image.text.get("prompt")  # type: ignore[attr-defined]


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def completion(
    *,
    images: list[str] | None = None,
    content: Any = "",
    finish_reason: str = "stop",
    native_finish_reason: str | None = None,
    model: str = IMAGE_MODELS[0],
    cost: float | None = DEFAULT_COST,
    reasoning_details: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A chat completion body in OpenRouter's shape; `cost` None leaves usage.cost out."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if images is not None:
        message["images"] = [{"type": "image_url", "image_url": {"url": u}} for u in images]
    if reasoning_details is not None:
        message["reasoning_details"] = reasoning_details
    choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish_reason}
    if native_finish_reason:
        choice["native_finish_reason"] = native_finish_reason
    return {
        "id": f"gen-{time.time_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": _usage(cost),
    }


def _usage(cost: float | None) -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": 10, "completion_tokens": 1290, "total_tokens": 1300}
    if cost is not None:
        usage["cost"] = cost
    return usage


def key_info(
    *,
    limit: float | None = 10.0,
    limit_remaining: float | None = 7.5,
    usage: float = 2.5,
    usage_daily: float = 0.5,
    label: str = "sk-or-v1-abc...xyz",
    is_free_tier: bool = False,
) -> dict[str, Any]:
    """The `data` of GET /api/v1/key."""
    return {
        "label": label,
        "limit": limit,
        "limit_remaining": limit_remaining,
        "usage": usage,
        "usage_daily": usage_daily,
        "usage_weekly": usage,
        "usage_monthly": usage,
        "is_free_tier": is_free_tier,
        "limit_reset": None,
    }


def error_body(code: int, message: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if metadata is not None:
        error["metadata"] = metadata
    return {"error": error}


@dataclass
class Reply:
    """One scripted answer. `action`: None, 'drop' (close before answering), 'truncate' (send
    half the announced body, then close), 'stall' (send half the body, then go silent),
    'hang' (never answer). Streamed, 'truncate' and 'stall' strike in the middle of the
    picture, and 'silent' opens the stream and then sends nothing, not even a keep-alive.

    `delay`: how long the model works. A plain answer comes after it; a stream opens at once
    and sends a keep-alive comment every `keepalive` seconds meanwhile. `stream=False` answers
    a stream request with plain JSON (a gateway that does not stream). A `raw_body` whose
    content type is text/event-stream is sent as a stream as it is. `tail_pause`: wait that
    long before the body's last 64 KB, so the client has caught up when the last byte arrives
    (as with a real, slower network)."""

    status: int = 200
    json_body: Any = None
    raw_body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    action: str | None = None
    tail_pause: float = 0.0
    content_type: str = "application/json"
    stream: bool | None = None
    keepalive: float = 1.0
    write_size: int = 32 * 1024

    @classmethod
    def error(cls, status: int, message: str = "", **kw: Any) -> Reply:
        metadata = kw.pop("metadata", None)
        return cls(
            status=status,
            json_body=error_body(status, message or f"error {status}", metadata),
            **kw,
        )

    @classmethod
    def html(cls, status: int) -> Reply:
        page = f"<html><head><title>{status}</title></head><body><h1>Bad Gateway</h1></body></html>"
        return cls(status=status, raw_body=page.encode(), content_type="text/html")


@dataclass
class Generation:
    """What GET /api/v1/generation knows of one generation id: its `total_cost`, after
    `not_found` look-ups answered 404 (it counts them down)."""

    total_cost: float
    not_found: int = 2


@dataclass
class ServedFile:
    """A file at /files/<name>. `chunked` omits Content-Length; `delay` waits before answering."""

    body: bytes
    content_type: str = "application/octet-stream"
    status: int = 200
    delay: float = 0.0
    chunked: bool = False


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float
    raw: bytes = field(default=b"", repr=False)  # the body as it came (POSTs)

    @property
    def key(self) -> str:
        return self.headers.get("Authorization", "").removeprefix("Bearer ")

    @property
    def prompt(self) -> str:
        if "prompt" in self.body:  # the Image API
            return str(self.body["prompt"])
        parts = self.body["messages"][-1]["content"]
        return " ".join(p["text"] for p in parts if p.get("type") == "text")

    @property
    def streamed(self) -> bool:
        """The request asked for a stream."""
        return isinstance(self.body, dict) and self.body.get("stream") is True

    @property
    def image_parts(self) -> list[str]:
        if "prompt" in self.body:  # the Image API: input_references
            return [p["image_url"]["url"] for p in self.body.get("input_references", [])]
        parts = self.body["messages"][-1]["content"]
        return [p["image_url"]["url"] for p in parts if p.get("type") == "image_url"]

    @property
    def history(self) -> list[dict[str, Any]]:
        """The messages before the request's own (a continued conversation's earlier turns)."""
        return [] if "prompt" in self.body else list(self.body["messages"][:-1])

    @property
    def size(self) -> int:
        """The request body's size in bytes, as sent."""
        return len(self.raw)


class FakeOpenRouter(LoopbackServer):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[RecordedRequest] = []
        self.script: deque[Reply] = deque()
        self.default: Callable[[RecordedRequest], Reply] | None = None
        self.models: list[dict[str, Any]] = self.default_models()
        self.models_status = 200
        # The Image API's discovery (404 when image_models_status says so: a relay without it).
        self.image_models: list[dict[str, Any]] = openrouter_images.default_discovery()
        self.image_models_status = 200
        # While set and not released, GET /models waits (a service that is slow to list).
        self.models_gate: asyncio.Event | None = None
        self.files: dict[str, ServedFile] = {}
        # Streamed answers the client closed before their end.
        self.aborted_streams: list[RecordedRequest] = []
        self._reset_spend()
        # time.monotonic() when the last answer's last byte was written (system-wide clock).
        self.last_byte_at = 0.0
        # 'hang' replies wait on this; reset() and stop() release them so that no handler
        # outlives its test (or holds up the server's shutdown).
        self._hangs_released = asyncio.Event()

    # --- control -------------------------------------------------------------------------------

    @staticmethod
    def default_models() -> list[dict[str, Any]]:
        def entry(model: str, inputs: list[str], outputs: list[str]) -> dict[str, Any]:
            return {
                "id": model,
                "architecture": {"input_modalities": inputs, "output_modalities": outputs},
                "supported_parameters": ["max_tokens", "temperature"],
                **_LISTING.get(model, {}),
            }

        return (
            [entry(m, ["image", "text"], ["image", "text"]) for m in IMAGE_MODELS]
            + [entry(m, ["text", "image"], ["image"]) for m in IMAGE_ONLY_MODELS]
            + [entry(m, ["text"], ["image"]) for m in TEXT_INPUT_MODELS]
            + [entry(m, ["text", "image"], ["text"]) for m in TEXT_MODELS]
        )

    def reset(self) -> None:
        self.requests.clear()
        self.aborted_streams.clear()
        self.models = self.default_models()
        self.image_models = openrouter_images.default_discovery()
        self.image_models_status = 200
        self.script.clear()
        self.default = None
        self.models_status = 200
        self._hangs_released.set()
        self._hangs_released = asyncio.Event()
        if self.models_gate is not None:
            self.models_gate.set()
        self.models_gate = None
        self.files.clear()
        self._reset_spend()

    def _reset_spend(self) -> None:
        # False: every completion answer loses usage.cost (a gateway that reports no cost).
        self.report_cost = True
        # GET /api/v1/key: `key_infos[key]` (else key_info()) as data; `key_replies[key]` (else
        # `key_reply`) replaces the answer with a fault (an error status, HTML, a hang), and
        # so it does for GET /api/v1/generation.
        self.key_infos: dict[str, dict[str, Any]] = {}
        self.key_replies: dict[str, Reply] = {}
        self.key_reply: Reply | None = None
        # GET /api/v1/generation: the generations it knows, by id (others: 404, always), and
        # the look-ups it answered.
        self.generations: dict[str, Generation] = {}
        self.lookups: list[RecordedRequest] = []

    def enqueue(self, *replies: Reply) -> None:
        self.script.extend(replies)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def model_requests(self) -> list[RecordedRequest]:
        """GET /models (chat completions' list)."""
        return [r for r in self.requests if r.path == "/api/v1/models"]

    def discovery_requests(self) -> list[RecordedRequest]:
        """GETs of the Image API's discovery: its model list and its models' endpoints."""
        return [r for r in self.requests if r.path.startswith("/api/v1/images/models")]

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def image_requests(self) -> list[RecordedRequest]:
        """POSTs to the Image API."""
        return [r for r in self.requests if r.path == "/api/v1/images"]

    def generation_requests(self) -> list[RecordedRequest]:
        """Every request that asks for a picture, through either API, in order."""
        return [r for r in self.requests if r.method == "POST"]

    def key_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/v1/key")]

    def generation_lookups(self, generation_id: str | None = None) -> list[RecordedRequest]:
        """GET /api/v1/generation (its `id` query is in `body`), of one id or all."""
        return [r for r in self.lookups if generation_id in (None, r.body["id"])]

    def serve(self, name: str, body: bytes, **kw: Any) -> str:
        """Serve body at /files/<name>; return its URL."""
        self.files[name] = ServedFile(body, **kw)
        return self.file_url(name)

    def file_url(self, name: str) -> str:
        """The URL of /files/<name>; 404 unless served."""
        return f"http://127.0.0.1:{self.port}/files/{name}"

    # --- server --------------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/chat/completions", self._chat)
        app.router.add_post("/api/v1/images", self._images)
        app.router.add_get("/api/v1/images/models", self._image_models)
        app.router.add_get("/api/v1/images/models/{model:.+}/endpoints", self._endpoints)
        app.router.add_get("/api/v1/models", self._models)
        app.router.add_get("/api/v1/key", self._key)
        app.router.add_get("/api/v1/generation", self._generation)
        app.router.add_get("/files/{name}", self._file)

    async def stop(self) -> None:
        self._hangs_released.set()
        await super().stop()

    async def _models(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            RecordedRequest("GET", request.path, dict(request.headers), None, time.monotonic())
        )
        if self.models_gate is not None:
            await self.models_gate.wait()
        if self.models_status != 200:
            return web.json_response(
                error_body(self.models_status, "down"), status=self.models_status
            )
        return web.json_response({"data": self._listed(request.query.get("output_modalities"))})

    def _listed(self, wanted: str | None) -> list[dict[str, Any]]:
        """OpenRouter's filter: text-output models by default, `all`, or any of a list."""
        if wanted == "all":
            return self.models
        kinds = set((wanted or "text").split(","))

        def outputs(entry: dict[str, Any]) -> set[str] | None:
            architecture = entry.get("architecture")
            found = (
                architecture.get("output_modalities") if isinstance(architecture, dict) else None
            )
            return set(found) if isinstance(found, list) else None

        return [e for e in self.models if outputs(e) is None or outputs(e) & kinds]

    async def _key(self, request: web.Request) -> web.StreamResponse:
        recorded = RecordedRequest(
            "GET", request.path, dict(request.headers), None, time.monotonic()
        )
        self.requests.append(recorded)
        fault = self.key_replies.get(recorded.key, self.key_reply)
        if fault is not None:
            return await self._send(request, fault)
        return web.json_response({"data": self.key_infos.get(recorded.key, key_info())})

    async def _generation(self, request: web.Request) -> web.StreamResponse:
        generation_id = request.query.get("id", "")
        recorded = RecordedRequest(
            "GET", request.path, dict(request.headers), {"id": generation_id}, time.monotonic()
        )
        # Background traffic of the spend side (cost lookups, resumed ones of earlier tests
        # too): kept apart from `requests`, which tests read as what a request sent.
        self.lookups.append(recorded)
        fault = self.key_replies.get(recorded.key, self.key_reply)
        if fault is not None:
            return await self._send(request, fault)
        known = self.generations.get(generation_id)
        if known is None or known.not_found > 0:
            if known is not None:
                known.not_found -= 1
            message = f"Generation {generation_id} not found"
            return web.json_response(error_body(404, message), status=404)
        data = {
            "id": generation_id,
            "total_cost": known.total_cost,
            "usage": known.total_cost,
            "streamed": True,
            "cancelled": True,
        }
        return web.json_response({"data": data})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            RecordedRequest("GET", request.path, dict(request.headers), None, time.monotonic())
        )
        served = self.files.get(request.match_info["name"])
        if served is None:
            return web.Response(status=404, text="not found")
        if served.delay:
            await asyncio.sleep(served.delay)
        response = web.StreamResponse(status=served.status)
        response.content_type = served.content_type
        if served.chunked:
            response.enable_chunked_encoding()
        else:
            response.content_length = len(served.body)
        try:
            await response.prepare(request)
            for start in range(0, len(served.body), 64 * 1024):
                await response.write(served.body[start : start + 64 * 1024])
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client gave up (size cap or timeout): that is what the test wants
        return response

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        recorded, reply = await self._take(request)
        if recorded.streamed and self._streams(reply):
            return await self._send_stream(request, reply, recorded)
        return await self._send(request, reply)

    async def _images(self, request: web.Request) -> web.StreamResponse:
        _, reply = await self._take(request)
        return await self._send(request, reply)

    async def _take(self, request: web.Request) -> tuple[RecordedRequest, Reply]:
        """Record a generation request; its scripted reply, else the default, else what the
        service would answer."""
        raw = await request.read()
        recorded = RecordedRequest(
            "POST", request.path, dict(request.headers), json.loads(raw), time.monotonic(), raw
        )
        self.requests.append(recorded)
        if self.script:
            reply = self.script.popleft()
        else:
            # `default` answers what it scripts; None from it: as OpenRouter would.
            scripted = self.default(recorded) if self.default is not None else None
            reply = scripted if scripted is not None else self.answer_for(recorded)
        if not self.report_cost:
            reply = _without_cost(reply)
        return recorded, reply

    def answer_for(self, recorded: RecordedRequest) -> Reply:
        """What OpenRouter would answer: a refusal of what the model cannot do, else success."""
        model = recorded.body.get("model")
        if recorded.path == "/api/v1/images":
            entry = next((e for e in self.image_models if e["id"] == model), None)
            refused = openrouter_images.refusal(entry, recorded.body)
            return Reply.error(*refused) if refused else self.success_for(recorded)
        entry = next((e for e in self.models if e["id"] == model), None)
        if entry is None:
            return Reply.error(400, f"{model} is not a valid model ID")
        architecture = entry.get("architecture", {})
        if "text" in recorded.body.get("modalities", []) and architecture.get(
            "output_modalities"
        ) == ["image"]:
            return Reply.error(404, MODALITIES_404)
        if recorded.image_parts and "image" not in architecture.get("input_modalities", ["image"]):
            return Reply.error(404, "No endpoints found that support image input")
        return self.success_for(recorded)

    @staticmethod
    def success_for(recorded: RecordedRequest) -> Reply:
        image = make_png(recorded.prompt)
        if recorded.path == "/api/v1/images":
            n = recorded.body.get("n", 1)
            cost = openrouter_images.cost_of(recorded.body.get("model", ""), recorded.body)
            return Reply(json_body=openrouter_images.images_answer([image] * n, cost))
        model = recorded.body.get("model", IMAGE_MODELS[0])
        details = reasoning_details_for(recorded.prompt) if model in REASONING_MODELS else None
        body = completion(
            images=[data_url(image)], content="Here you go.", model=model, reasoning_details=details
        )
        return Reply(json_body=body)

    async def _image_models(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            RecordedRequest("GET", request.path, dict(request.headers), None, time.monotonic())
        )
        if self.image_models_status != 200:
            return web.json_response(
                error_body(self.image_models_status, "Not Found"), status=self.image_models_status
            )
        return web.json_response({"data": self.image_models})

    async def _endpoints(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            RecordedRequest("GET", request.path, dict(request.headers), None, time.monotonic())
        )
        model = request.match_info["model"]
        listed = any(e["id"] == model for e in self.image_models)
        if self.image_models_status != 200 or not listed:
            return web.json_response(error_body(404, f"Model {model} not found"), status=404)
        return web.json_response(openrouter_images.endpoints_answer(model))

    def _last_byte_written(self) -> None:
        self.last_byte_at = time.monotonic()

    def _aborted(self, recorded: RecordedRequest) -> None:
        if any(r is recorded for r in self.requests):  # not a stream of a test already over
            self.aborted_streams.append(recorded)

    @staticmethod
    def _streams(reply: Reply) -> bool:
        if reply.stream is False or reply.status != 200 or reply.action in ("hang", "drop"):
            return False
        if reply.raw_body is not None:
            return reply.content_type == "text/event-stream"
        return isinstance(reply.json_body, dict)

    async def _send_stream(
        self, request: web.Request, reply: Reply, recorded: RecordedRequest
    ) -> web.StreamResponse:
        stream = reply.raw_body
        headers = dict(reply.headers)
        if stream is None:
            stream = openrouter_stream.render(reply.json_body)
            if isinstance(reply.json_body.get("id"), str):
                headers.setdefault("X-Generation-Id", reply.json_body["id"])
        return await openrouter_stream.send_stream(
            request,
            stream,
            latency=reply.delay,
            keepalive=reply.keepalive,
            write_size=reply.write_size,
            fault=reply.action,
            wait_released=self._hangs_released.wait,
            on_abort=lambda: self._aborted(recorded),
            headers=headers,
            tail_pause=reply.tail_pause,
            on_last_byte=self._last_byte_written,
        )

    async def _send(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.action == "hang":
            await self._hangs_released.wait()
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=504)
        if reply.action == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        body = reply.raw_body
        if body is None:
            body = json.dumps(reply.json_body).encode()
        response = web.StreamResponse(status=reply.status, headers=reply.headers)
        response.content_type = reply.content_type
        response.content_length = len(body)
        await response.prepare(request)
        if reply.action in ("truncate", "stall"):
            await response.write(body[: len(body) // 2])
            if reply.action == "stall":
                await self._hangs_released.wait()
            assert request.transport is not None
            request.transport.close()
            return response
        if reply.tail_pause and len(body) > _TAIL:
            await response.write(body[:-_TAIL])
            await asyncio.sleep(reply.tail_pause)
            body = body[-_TAIL:]
        # Piece by piece: on Python 3.11 asyncio copies whatever the socket has not taken yet
        # into the transport's buffer, so one write of a 39 MB answer would put a 39 MB copy
        # into the measurements of the client under test (3.12 keeps views of the bytes).
        view = memoryview(body)
        for start in range(0, len(body), _WRITE_CHUNK):
            await response.write(view[start : start + _WRITE_CHUNK])
        self.last_byte_at = time.monotonic()
        await response.write_eof()
        return response


def _without_cost(reply: Reply) -> Reply:
    body = reply.json_body
    if isinstance(body, dict) and isinstance(body.get("usage"), dict):
        usage = {k: v for k, v in body["usage"].items() if k != "cost"}
        return dataclasses.replace(reply, json_body={**body, "usage": usage})
    return reply


class FakeInThread:
    """A FakeOpenRouter on its own event loop in a thread.

    For measurements: the session fake shares the test's loop, so its own work (parsing request
    bodies, writing megabytes of answers) would count as stalls of the plugin's loop.
    """

    def __init__(self) -> None:
        self.fake = FakeOpenRouter()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> FakeOpenRouter:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.start(), self._loop).result(10)
        return self.fake

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
