"""The streaming side of the fake OpenRouter: a completion sent as server-sent events.

What OpenRouter does for `"stream": true` (its streaming docs): the stream opens at once; while
the model works, comment lines `: OPENROUTER PROCESSING` keep it alive; then `data: {chunk}`
events whose `choices[0].delta` carries the role, the text, the images (the parts of
`message.images`), the pieces of the reasoning details and the finish reason; the last chunk
carries `usage`; `data: [DONE]` ends it.
An error after the stream started is a chunk with an `error` object and
`finish_reason: "error"`.

The bytes go out in small writes, so a big picture's event is split across many network
writes, as it is on the internet. Faults (StreamFault) cut or silence the stream at the middle
of the picture.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

KEEPALIVE = b": OPENROUTER PROCESSING\n\n"
DONE_EVENT = b"data: [DONE]\n\n"
_TAIL = 64 * 1024  # what a tail pause holds back


class StreamFault:
    """Values of Reply.action for a streamed answer."""

    CUT = "truncate"  # the connection closes in the middle of the picture's event
    STALL = "stall"  # the stream goes silent in the middle of the picture's event
    SILENT = "silent"  # the stream opens, then nothing ever comes: no keep-alive, no data
    # The whole stream is sent, then the connection stays open without a byte (a gateway that
    # neither sends [DONE] nor ends the body): until released, or the client closes it.
    LINGER = "linger"


def event(data: Mapping[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    return f"data: {text}\n\n".encode()


def _split_text(text: str, parts: int = 3) -> list[str]:
    """The text in a few deltas, as a model streams it."""
    if len(text) < parts:
        return [text] if text else []
    step = -(-len(text) // parts)
    return [text[i : i + step] for i in range(0, len(text), step)]


def _detail_pieces(detail: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A reasoning detail as the pieces a stream carries it in: the first with every field,
    the rest only its type, index and more of its text (or encrypted data)."""
    key = next((k for k in ("text", "summary", "data") if isinstance(detail.get(k), str)), None)
    if key is None or "index" not in detail:
        return [dict(detail)]
    parts = _split_text(detail[key])
    first = {**detail, key: parts[0] if parts else ""}
    rest = [{"type": detail.get("type"), "index": detail["index"], key: p} for p in parts[1:]]
    return [first, *rest]


def chunks_of(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The stream chunks that carry `body` (a completion or an error body)."""
    base = {
        "id": body.get("id", f"gen-{time.time_ns()}"),
        "object": "chat.completion.chunk",
        "created": body.get("created", int(time.time())),
        "model": body.get("model", ""),
    }

    def chunk(delta: dict[str, Any], **fields: Any) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": None, **fields}
        return {**base, "choices": [choice]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    if isinstance(body.get("error"), Mapping):
        failed = chunk({"content": ""}, finish_reason="error")
        failed["error"] = body["error"]
        return [*chunks, failed]
    for choice in body.get("choices") or []:
        message = choice.get("message") or {}
        content = message.get("content")
        if isinstance(content, str):
            chunks.extend(chunk({"content": piece}) for piece in _split_text(content))
        elif content:
            chunks.append(chunk({"content": content}))  # gateways' list of parts, as it is
        for detail in message.get("reasoning_details") or []:
            chunks.extend(chunk({"reasoning_details": [p]}) for p in _detail_pieces(detail))
        for image in message.get("images") or []:
            chunks.append(chunk({"images": [image]}))
        finish = {"finish_reason": choice.get("finish_reason", "stop")}
        if choice.get("native_finish_reason"):
            finish["native_finish_reason"] = choice["native_finish_reason"]
        chunks.append(chunk({}, **finish))
    if body.get("usage") is not None:
        chunks.append({**base, "choices": [], "usage": body["usage"]})
    return chunks


def render(body: Mapping[str, Any]) -> bytes:
    """The whole event stream of `body`, [DONE] included unless it is an error."""
    data = b"".join(event(c) for c in chunks_of(body))
    return data if isinstance(body.get("error"), Mapping) else data + DONE_EVENT


def _fault_position(stream: bytes) -> int:
    """Where a fault strikes: the middle of the biggest event (the picture's), else halfway."""
    start, best = 0, (0, 0)
    while start < len(stream):
        end = stream.find(b"\n\n", start)
        end = len(stream) if end < 0 else end + 2
        if end - start > best[1] - best[0]:
            best = (start, end)
        start = end
    return (best[0] + best[1]) // 2 if best[1] > best[0] else len(stream) // 2


async def send_stream(
    request: web.Request,
    stream: bytes,
    *,
    latency: float,
    keepalive: float,
    write_size: int,
    fault: str | None,
    wait_released: Callable[[], Awaitable[Any]],
    on_abort: Callable[[], None],
    headers: Mapping[str, str] | None = None,
    tail_pause: float = 0.0,
    on_last_byte: Callable[[], None] = lambda: None,
) -> web.StreamResponse:
    """Answer with `stream`: open at once, keep-alives every `keepalive` s for `latency` s,
    then the events in writes of `write_size` bytes (with a pause of `tail_pause` s before the
    last 64 KB). `on_abort` is called when the client closes the stream before its end (what
    stops a generation upstream), `on_last_byte` once the last byte is written."""
    response = web.StreamResponse(status=200, headers=dict(headers or {}))
    response.content_type = "text/event-stream"
    response.headers["Cache-Control"] = "no-cache"
    try:
        await response.prepare(request)
        await response.write(KEEPALIVE)
        if fault == StreamFault.SILENT:
            if await _silence(request, wait_released(), on_abort):
                _close(request)
            return response
        waited = 0.0
        while waited < latency:
            step = min(keepalive, latency - waited)
            if not await _silence(request, asyncio.sleep(step), on_abort):
                return response
            waited += step
            await response.write(KEEPALIVE)
        stop = _fault_position(stream) if fault in (StreamFault.CUT, StreamFault.STALL) else None
        data = stream if stop is None else stream[:stop]
        tail = _TAIL if tail_pause and stop is None and len(data) > _TAIL else 0
        for start in range(0, len(data) - tail, write_size):
            await response.write(data[start : min(start + write_size, len(data) - tail)])
            await asyncio.sleep(0)  # one network write each
        if tail:
            await asyncio.sleep(tail_pause)
            await response.write(data[-tail:])
        if stop is not None:
            if fault != StreamFault.STALL or await _silence(request, wait_released(), on_abort):
                _close(request)
            return response
        if fault == StreamFault.LINGER:
            on_last_byte()
            if await _silence(request, wait_released(), on_abort):
                _close(request)
            return response
        on_last_byte()
        await response.write_eof()
    except ConnectionResetError:
        on_abort()  # the client gave up (a cap, a timeout, a cancelled call)
    except asyncio.CancelledError:
        on_abort()
        raise
    return response


async def _silence(
    request: web.Request, until: Awaitable[Any], on_abort: Callable[[], None]
) -> bool:
    """Send nothing until `until` is done; False (after on_abort) if the client closes the
    connection meanwhile. A server that sends nothing learns of that only by looking."""
    waiting = asyncio.ensure_future(until)
    try:
        while not waiting.done():
            if request.transport is None or request.transport.is_closing():
                on_abort()
                return False
            await asyncio.wait({waiting}, timeout=0.05)
        return True
    finally:
        waiting.cancel()


def _close(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()
