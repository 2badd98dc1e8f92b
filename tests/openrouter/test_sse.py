"""Reading an event stream: framing cut at any byte, big pictures decoded on the way, chunks
put together into the answer parse_answer would have made of the whole completion."""

from __future__ import annotations

import base64
import json
import random

import pytest

from tests.fakes.openrouter import (
    completion,
    data_url,
    error_body,
    make_png,
    reasoning_details_for,
)
from tests.fakes.openrouter_stream import KEEPALIVE, chunks_of, render
from tests.support import images as img
from utils.imaging.store import ImageStore
from utils.openrouter.answer_stream import DIVERT_AT, AnswerReader
from utils.openrouter.answers import parse_answer
from utils.openrouter.sse import DONE, SseFramer, StreamAssembler, looks_like_event_stream

BIG = img.noisy_png((160, 160))
SMALL = make_png("small")
assert len(base64.b64encode(BIG)) > DIVERT_AT > len(base64.b64encode(SMALL))


@pytest.fixture
def store(tmp_path) -> ImageStore:
    return ImageStore(tmp_path / "images")


def _read(store: ImageStore, stream: bytes, sizes: list[int]) -> tuple:
    """Feed `stream` in pieces of `sizes` (cycled); (reader, assembler, framer)."""
    reader = AnswerReader(store)
    framer = SseFramer(reader)
    chunks = StreamAssembler()
    pos, n = 0, 0
    while pos < len(stream):
        size = sizes[n % len(sizes)]
        for event in framer.feed(stream[pos : pos + size]):
            if event.strip() == DONE:
                chunks.done = True
            else:
                assert chunks.add(json.loads(event)) is None
        pos, n = pos + size, n + 1
        reader.write(reader.take_unwritten())
    return reader, chunks, framer


@pytest.mark.parametrize("sizes", [[1], [3, 7], [4096], [10**9]], ids=str)
def test_a_stream_read_at_any_cut_gives_the_whole_answer(store, sizes):
    body = completion(images=[data_url(BIG), data_url(SMALL)], content="Here you go, twice.")
    stream = KEEPALIVE * 3 + render(body)
    reader, chunks, framer = _read(store, stream, sizes)

    parsed = chunks.parsed()
    whole = parse_answer(body)  # the same completion, not streamed
    assert (parsed.text, parsed.finish_reasons) == (whole.text, whole.finish_reasons)
    assert img.streamed_images(reader, parsed.image_urls) == [BIG, SMALL]
    assert parsed.text == "Here you go, twice."
    assert parsed.finish_reasons == ("stop",)
    assert chunks.done and chunks.finished and not framer.in_event
    assert chunks.usage is not None and chunks.usage.completion_tokens == 1290
    assert chunks.generation_id == body["id"]


def test_the_picture_is_decoded_while_its_line_arrives(store):
    """Its base64 never sits in memory whole: the temp file grows as the line comes in."""
    stream = render(completion(images=[data_url(BIG)]))
    reader = AnswerReader(store)
    framer = SseFramer(reader)
    most = stream.index(b"base64,") + len(base64.b64encode(BIG)) * 9 // 10
    (role_chunk,) = framer.feed(stream[:most])  # the picture's event is still open
    assert json.loads(role_chunk)["choices"][0]["delta"]["role"] == "assistant"
    assert reader.unwritten > len(BIG) // 2  # decoded, not kept as text
    assert reader.skeleton_size < 2048
    reader.discard()


def test_framing_variants(store):
    """CRLF and CR line ends, fields we do not use, multi-line data, a comment as long as a
    picture, a field without a colon, a space-less `data:`."""
    one, two = chunks_of(completion(images=[data_url(SMALL)], content="ab"))[:2]
    text = json.dumps(one)
    cut = len(text) // 2
    stream = (
        b": " + b"x" * 300_000 + b"\r\n\r\n"
        + b"event: message\rid: 7\rretry: 1000\r"
        + b"data:" + text[:cut].encode() + b"\r\n"
        + b"data: " + text[cut:].encode() + b"\n\n"
        + b"data\n\n"  # an empty data line: an empty event, ignored below
        + b"data: " + json.dumps(two).encode() + b"\r\r"
        + b"averyveryverylongfieldnamethatnobodyknows: value\n\n"
    )  # fmt: skip
    events: list[bytes] = []
    reader = AnswerReader(store)
    framer = SseFramer(reader)
    for i in range(0, len(stream), 5):
        events.extend(framer.feed(stream[i : i + 5]))
    assert len(events) == 3
    assert json.loads(events[0].replace(b"\n", b"")) == one
    assert events[1] == b""
    assert json.loads(events[2]) == two


def test_an_event_cut_off_is_reported_as_open(store):
    stream = render(completion(images=[data_url(BIG)]))
    reader = AnswerReader(store)
    framer = SseFramer(reader)
    framer.feed(stream[: len(stream) // 2])
    assert framer.in_event
    reader.discard()


def test_the_assembler_keeps_finish_reasons_errors_and_parts():
    chunks = StreamAssembler()
    assert (
        chunks.add({"choices": [{"delta": {"content": [{"type": "text", "text": "a"}]}}]}) is None
    )
    assert not chunks.finished
    image = {"type": "image_url", "image_url": {"url": data_url(SMALL)}}
    chunks.add({"choices": [{"delta": {"content": [image, "b"]}}]})
    chunks.add({"choices": [{"message": {"content": "c"}, "finish_reason": "STOP"}]})
    assert chunks.finished and not chunks.done
    parsed = chunks.parsed()
    assert parsed.text == "abc" and parsed.image_urls == (data_url(SMALL),)
    assert parsed.finish_reasons == ("stop",)

    failed = StreamAssembler()
    (role, error_chunk) = chunks_of(error_body(502, "Provider returned error"))
    assert failed.add(role) is None
    assert failed.add(error_chunk) == {"code": 502, "message": "Provider returned error"}
    assert failed.ended_in_error
    assert StreamAssembler().add([1, 2])  # not an object: an error of its own


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b": OPENROUTER PROCESSING\n\n", True),
        (b"\n\ndata: {}", True),
        (b"event: x", True),
        (b'{"id": 1}', False),
        (b"<html>", False),
        (b"", False),
    ],
)
def test_looks_like_event_stream(head, expected):
    assert looks_like_event_stream(head) is expected


def test_random_cuts_of_a_stream_with_two_big_pictures(store):
    big2 = img.noisy_png((170, 170))
    body = completion(images=[data_url(BIG), data_url(big2)], content="two")
    stream = render(body)
    rng = random.Random(3)
    for _ in range(5):
        sizes = [rng.randint(1, 70_000) for _ in range(20)]
        reader, chunks, _ = _read(store, stream, sizes)
        assert img.streamed_images(reader, chunks.parsed().image_urls) == [BIG, big2]
    assert not any(p.name.startswith(".") for p in store.directory.iterdir())


def test_streamed_reasoning_details_come_out_as_a_plain_answer_has_them(store):
    """Gemini 3 streams `delta.reasoning_details` in pieces (the fake splits each detail's
    text or encrypted data over several chunks): put together, they are what the same answer
    sent plain carries in `message.reasoning_details`."""
    details = reasoning_details_for("a red apple")
    body = completion(images=[data_url(SMALL)], content="Here you go.", reasoning_details=details)
    pieces = [
        piece
        for chunk in chunks_of(body)
        for choice in chunk["choices"]
        for piece in choice["delta"].get("reasoning_details", [])
    ]
    assert len(pieces) > len(details)  # really in pieces
    reader, chunks, _ = _read(store, render(body), [4096])
    assert chunks.parsed().reasoning_details == parse_answer(body).reasoning_details
    assert list(parse_answer(body).reasoning_details) == details
    reader.discard()


def test_reasoning_pieces_join_by_index_and_type():
    chunks = StreamAssembler()

    def delta(*pieces):
        chunks.add({"choices": [{"delta": {"reasoning_details": list(pieces)}}]})

    delta({"type": "reasoning.text", "text": "Plan", "index": 0, "format": "google-gemini-v1"})
    delta({"type": "reasoning.text", "text": "ning", "index": 0, "signature": None})
    delta({"type": "reasoning.encrypted", "data": "QUJD", "index": 1, "id": "sig-1"})
    delta({"type": "reasoning.encrypted", "data": "REVG", "index": 1}, "not a detail")
    delta({"type": "reasoning.summary", "summary": "no index"})
    delta({"type": "reasoning.summary", "summary": "none either"})
    assert chunks.parsed().reasoning_details == (
        {"type": "reasoning.text", "text": "Planning", "index": 0, "format": "google-gemini-v1"},
        {"type": "reasoning.encrypted", "data": "QUJDREVG", "index": 1, "id": "sig-1"},
        {"type": "reasoning.summary", "summary": "no index"},
        {"type": "reasoning.summary", "summary": "none either"},
    )
