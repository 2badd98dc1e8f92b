"""A streamed chat completion (`"stream": true`): server-sent events, read in bounded memory.

OpenRouter opens the stream at once and, while the model works, sends comment lines
(`: OPENROUTER PROCESSING`) that keep the connection alive. Each event is a `data: {json}` line
holding a chunk whose `choices[i].delta` adds content, images (the same parts as
`message.images`) and at last a finish reason; the last chunk carries `usage`; `data: [DONE]`
ends the stream. An error after the stream started arrives as a chunk with an `error` object
(and `finish_reason: "error"`).

A picture arrives as one huge `data:` line (a 4K PNG is 20-30 MB of base64). SseFramer cuts
the body into lines without ever holding one: comment lines are skipped as they pass, and the
value of each `data:` line goes straight into an AnswerReader, which decodes big base64
payloads into temp files as they arrive. What is left of an event (its skeleton) is small JSON.
StreamAssembler then puts the chunks together into one message for parse_messages().

A model that reasons (Gemini 3 image models) streams `delta.reasoning_details` too: pieces of
detail objects, each with its `type` and `index`. Pieces of one index continue one detail
(their `text`, `summary` and `data` strings are joined, other fields kept as they last came),
so the message put together carries the details as a plain answer's `message.reasoning_details`
would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.charges import Usage
from .answer_stream import AnswerReader
from .answers import ParsedAnswer, parse_messages, reasoning_details_of
from .usage import usage_of

DONE = b"[DONE]"
# The string fields of a reasoning detail that its streamed pieces add to.
_JOINED_FIELDS = ("text", "summary", "data")
# A field name longer than this is no field of ours: the line is skipped.
_MAX_FIELD = 32
_LF, _CR, _COLON, _SPACE = 0x0A, 0x0D, 0x3A, 0x20
_LINE_START, _FIELD, _DATA_FIRST, _DATA, _SKIP = range(5)


def looks_like_event_stream(head: bytes) -> bool:
    """Whether a body that starts with `head` is an SSE stream (for gateways that send one
    under another Content-Type). A JSON body starts with `{`, an HTML page with `<`."""
    text = head.lstrip()
    return text.startswith((b":", b"data:", b"event:", b"id:", b"retry:"))


class SseFramer:
    """Cuts an event stream into events; the data of each goes through `reader`.

    feed() returns the skeletons of the events it completed, in order. Only a field name (a
    few bytes) is ever buffered here; the reader bounds the rest.
    """

    def __init__(self, reader: AnswerReader) -> None:
        self._reader = reader
        self._state = _LINE_START
        self._field = bytearray()
        self._has_data = False  # the current event has a data line
        self._after_cr = False  # a CR ended the last line: a LF right after it belongs to it

    @property
    def in_event(self) -> bool:
        """Data of an event not yet ended by its blank line (a stream cut here lost it)."""
        return self._has_data

    def feed(self, data: bytes) -> list[bytes]:
        events: list[bytes] = []
        pos, end = 0, len(data)
        while pos < end:
            if self._after_cr:
                self._after_cr = False
                if data[pos] == _LF:
                    pos += 1
                    continue
            if self._state == _LINE_START:
                pos = self._line_start(data, pos, events)
                continue
            if self._state == _DATA_FIRST:
                if data[pos] == _SPACE:  # one space after the colon is not part of the value
                    pos += 1
                self._state = _DATA
                continue
            eol = _end_of_line(data, pos, end)
            stop = end if eol < 0 else eol
            if self._state == _FIELD:
                pos = self._read_field(data, pos, stop)
                if self._state != _FIELD or eol < 0:
                    continue
                # The line ended without a colon: a field with an empty value.
                if bytes(self._field) == b"data":
                    self._begin_data_line()
                self._field.clear()
            elif self._state == _DATA:
                if stop > pos:
                    self._reader.feed(data[pos:stop])
            pos = stop
            if eol >= 0:
                self._after_cr = data[eol] == _CR
                self._state = _LINE_START
                pos = eol + 1
        return events

    def _line_start(self, data: bytes, pos: int, events: list[bytes]) -> int:
        byte = data[pos]
        if byte in (_LF, _CR):  # a blank line ends the event
            self._after_cr = byte == _CR
            if self._has_data:
                self._has_data = False
                events.append(self._reader.finish())
            return pos + 1
        if byte == _COLON:  # a comment: the keep-alive
            self._state = _SKIP
            return pos + 1
        self._state = _FIELD
        return pos

    def _read_field(self, data: bytes, pos: int, stop: int) -> int:
        colon = data.find(b":", pos, stop)
        part_end = stop if colon < 0 else colon
        self._field += data[pos:part_end]
        if len(self._field) > _MAX_FIELD:
            self._field.clear()
            self._state = _SKIP
            return part_end
        if colon < 0:
            return part_end
        if bytes(self._field) == b"data":
            self._begin_data_line()
            self._state = _DATA_FIRST
        else:  # event:, id:, retry: and unknown fields say nothing we use
            self._state = _SKIP
        self._field.clear()
        return colon + 1

    def _begin_data_line(self) -> None:
        if self._has_data:  # the data lines of one event are joined by line breaks
            self._reader.feed(b"\n")
        self._has_data = True


def _end_of_line(data: bytes, pos: int, end: int) -> int:
    """Index of the first CR or LF in data[pos:end], or -1."""
    lf = data.find(b"\n", pos, end)
    cr = data.find(b"\r", pos, end if lf < 0 else lf)
    return cr if cr >= 0 else lf


class StreamAssembler:
    """The chunks of one stream put together: text, image parts, finish reasons, usage."""

    def __init__(self) -> None:
        self._texts: list[str] = []
        self._parts: list[Any] = []  # content parts that are not text (image_url parts)
        self._images: list[Any] = []
        self._details: list[dict[str, Any]] = []  # reasoning details, pieces joined
        self._reasons: list[str] = []
        self.usage: Usage | None = None
        self.generation_id = ""
        self.done = False  # `data: [DONE]` arrived

    def add(self, chunk: object) -> Mapping[str, Any] | None:
        """Take one parsed chunk; return its `error` object if it carries one."""
        if not isinstance(chunk, Mapping):
            return {"message": "stream chunk is not a JSON object"}
        if isinstance(chunk.get("id"), str) and not self.generation_id:
            self.generation_id = chunk["id"][:200]
        usage = usage_of(chunk)
        if usage is not None:  # the last chunk that carries one has it
            self.usage = usage
        for choice in chunk.get("choices") or ():
            if isinstance(choice, Mapping):
                self._add_choice(choice)
        error = chunk.get("error")
        return error if isinstance(error, Mapping) else None

    def _add_choice(self, choice: Mapping[str, Any]) -> None:
        for key in ("finish_reason", "native_finish_reason"):
            if isinstance(choice.get(key), str):
                self._reasons.append(choice[key].lower())
        # Some gateways send whole messages as chunks.
        delta = choice.get("delta") or choice.get("message")
        if not isinstance(delta, Mapping):
            return
        content = delta.get("content")
        if isinstance(content, str):
            self._texts.append(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, str):
                    self._texts.append(part)
                elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                    self._texts.append(part["text"])
                else:
                    self._parts.append(part)
        images = delta.get("images")
        if isinstance(images, list):
            self._images.extend(images)
        for piece in reasoning_details_of(delta):
            self._add_detail(piece)

    def _add_detail(self, piece: Mapping[str, Any]) -> None:
        """One streamed piece of a reasoning detail: a new detail, or more of the last one of
        its index and type."""
        index = piece.get("index")
        if isinstance(index, int) and not isinstance(index, bool):
            for detail in reversed(self._details):
                if detail.get("index") == index and detail.get("type") == piece.get("type"):
                    for key, value in piece.items():
                        earlier = detail.get(key)
                        if key in _JOINED_FIELDS and isinstance(value, str):
                            detail[key] = (earlier if isinstance(earlier, str) else "") + value
                        elif value is not None:
                            detail[key] = value
                    return
        self._details.append(dict(piece))

    @property
    def finished(self) -> bool:
        """The stream said it was complete: [DONE], or a finish reason (some gateways end
        without [DONE])."""
        return self.done or bool(self._reasons)

    @property
    def ended_in_error(self) -> bool:
        """finish_reason "error" without an error object to say more."""
        return "error" in self._reasons

    def parsed(self) -> ParsedAnswer:
        content: list[Any] = [{"type": "text", "text": "".join(self._texts)}, *self._parts]
        message = {"content": content, "images": self._images, "reasoning_details": self._details}
        return parse_messages([message], self._reasons, self.usage)
