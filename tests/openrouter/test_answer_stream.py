"""Streaming an answer body: big base64 payloads decoded piece by piece, the rest parsed as JSON.

The reader is fed the way the client feeds it (pieces of any size, decoded bytes written in
batches); what comes out must be exactly what the whole-body path would have produced.
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest

from tests.fakes.openrouter import completion, data_url, make_png
from tests.support import images as img
from utils.core.errors import InvalidImageError
from utils.imaging.store import ImageStore, is_own_image_name, is_own_temp_name
from utils.openrouter.answer_stream import DIVERT_AT, AnswerReader
from utils.openrouter.answers import parse_answer

# Big enough to be streamed (its base64 is longer than DIVERT_AT), small enough to be quick.
BIG = img.noisy_png((160, 160))
BIG2 = img.noisy_png((170, 170))
SMALL = make_png("small")
assert len(base64.b64encode(BIG)) > DIVERT_AT > len(base64.b64encode(SMALL))


def _pieces(body: bytes, sizes: list[int]) -> list[bytes]:
    pieces, pos, n = [], 0, 0
    while pos < len(body):
        size = sizes[n % len(sizes)]
        pieces.append(body[pos : pos + size])
        pos, n = pos + size, n + 1
    return pieces


def _read(store: ImageStore, body: bytes, sizes: list[int], seed: int = 0) -> tuple:
    """Feed `body` as the client does; (reader, skeleton)."""
    rng = random.Random(seed)
    reader = AnswerReader(store)
    for piece in _pieces(body, sizes):
        reader.feed(piece)
        if rng.random() < 0.3:  # the worker writes whenever it gets to it
            reader.write(reader.take_unwritten())
    reader.write(reader.take_unwritten())
    return reader, reader.finish()


def _resolve(reader: AnswerReader, skeleton: bytes) -> tuple[list[bytes], str]:
    """The bytes of every image the answer holds, in order, and its text."""
    parsed = parse_answer(json.loads(skeleton))
    return img.streamed_images(reader, parsed.image_urls), parsed.text


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def _body(**kw) -> bytes:
    return json.dumps(completion(**kw)).encode()


@pytest.fixture
def store(tmp_path) -> ImageStore:
    return ImageStore(tmp_path / "images")


# --- the reader ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [[1], [3], [4], [5], [255, 256, 257], [65536], [10**7]])
def test_a_big_payload_is_streamed_whatever_the_piece_boundaries(store, sizes):
    body = _body(images=[data_url(BIG)], content="Here you go.")
    reader, skeleton = _read(store, body, sizes)

    assert len(skeleton) < 600  # the payload left the JSON...
    found, text = _resolve(reader, skeleton)
    assert found == [BIG]  # ...and came back byte for byte
    assert text == "Here you go."
    [name] = _files(store.directory)
    assert is_own_image_name(name) and name.endswith(".png")


def test_random_piece_sizes(store):
    body = _body(images=[data_url(BIG), data_url(BIG2)])
    for seed in range(20):
        rng = random.Random(seed)
        sizes = [rng.randint(1, 9000) for _ in range(50)]
        reader, skeleton = _read(store, body, sizes, seed)
        found, _ = _resolve(reader, skeleton)
        assert found == [BIG, BIG2], seed


def test_escaped_slashes_everywhere(store):
    # Some encoders (PHP's) write every '/' as '\/', in the payload and in the media type.
    body = _body(images=[data_url(BIG)]).replace(b"/", b"\\/")
    assert b"image\\/png" in body and body.count(b"\\/") > 100
    for sizes in ([1], [2], [7], [4096], [65536]):
        reader, skeleton = _read(store, body, sizes)
        assert len(skeleton) < 600
        assert _resolve(reader, skeleton)[0] == [BIG]


def test_every_answer_shape_in_one_body(store):
    content = [
        {"type": "text", "text": f"Before ![one]({data_url(BIG2)}) after."},
        {"type": "image_url", "image_url": {"url": data_url(SMALL)}},
    ]
    body = _body(images=[data_url(BIG)], content=content)
    reader, skeleton = _read(store, body, [1000])
    found, text = _resolve(reader, skeleton)
    assert found == [BIG, BIG2, SMALL]
    assert text == "Before  after."


def test_a_short_payload_stays_in_the_json(store):
    body = _body(images=[data_url(SMALL)])
    reader, skeleton = _read(store, body, [100])
    assert base64.b64encode(SMALL) in skeleton
    assert _resolve(reader, skeleton)[0] == [SMALL]
    assert _files(store.directory) == []  # nothing streamed, nothing written


def test_line_wrapped_base64_takes_the_ordinary_path(store):
    encoded = base64.b64encode(BIG).decode()
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    body = _body(images=[f"data:image/png;base64,{wrapped}"])
    reader, skeleton = _read(store, body, [4096])
    assert len(skeleton) > len(encoded)  # each line is a short run: none was diverted
    assert _resolve(reader, skeleton)[0] == [BIG]


@pytest.mark.parametrize("escape", ["\\u002f", "\\u002F", "\\n"])
def test_an_escape_inside_a_streamed_payload(store, escape):
    """The run stops at the escape; what follows stays in the JSON and is decoded after it."""
    encoded = base64.b64encode(BIG).decode()
    cut = encoded.index("/", DIVERT_AT + 100)
    replacement = escape if escape != "\\n" else "/\\n"  # a line break beside the slash
    payload = encoded[:cut] + replacement + encoded[cut + 1 :]
    body = _body(images=["data:image/png;base64," + payload]).replace(b"\\\\", b"\\")
    reader, skeleton = _read(store, body, [3000])
    assert len(skeleton) < len(body) / 2  # the part before the escape was streamed
    assert _resolve(reader, skeleton)[0] == [BIG]


def test_an_inline_data_url_ends_where_its_letters_end(store):
    text = f"![pic]({data_url(BIG)}) and then some words=fine"
    reader, skeleton = _read(store, _body(content=text), [5000])
    found, rest = _resolve(reader, skeleton)
    assert found == [BIG]
    assert rest == "and then some words=fine"


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda b: base64.b64encode(b).decode(), id="padded"),
        pytest.param(lambda b: base64.b64encode(b).decode().rstrip("="), id="no-padding"),
        pytest.param(lambda b: base64.urlsafe_b64encode(b).decode(), id="url-safe"),
    ],
)
def test_base64_variants_stream_too(store, encode):
    picture = next(p for p in (BIG + b"\0" * n for n in range(3)) if len(p) % 3)
    body = _body(images=["data:image/png;base64," + encode(picture)])
    reader, skeleton = _read(store, body, [777])
    assert len(skeleton) < 600
    # The trailing zero bytes are PNG trailing data: the image is still whole and valid.
    assert _resolve(reader, skeleton)[0] == [picture]


def test_a_truncated_body_leaves_nothing(store):
    body = _body(images=[data_url(BIG)])
    reader, skeleton = _read(store, body[: len(body) // 2], [4096])
    with pytest.raises(ValueError):
        json.loads(skeleton)
    reader.discard()
    assert _files(store.directory) == []


@pytest.mark.parametrize(
    "damage", ["bad-character", "cut-mid-quantum", "not-an-image", "truncated-png"]
)
def test_a_bad_streamed_payload_raises_and_leaves_nothing(store, damage):
    encoded = base64.b64encode(BIG).decode()
    letters = encoded.rstrip("=")
    payload = {
        "bad-character": encoded[: DIVERT_AT + 10] + "*" + encoded[DIVERT_AT + 10 :],
        "cut-mid-quantum": letters[: (len(letters) - 1) // 4 * 4 - 3],  # 4k+1 letters
        "not-an-image": base64.b64encode(random.Random(1).randbytes(100_000)).decode(),
        "truncated-png": base64.b64encode(BIG[: len(BIG) * 3 // 4]).decode(),
    }[damage]
    assert len(payload) > DIVERT_AT
    reader, skeleton = _read(store, _body(images=["data:image/png;base64," + payload]), [4096])
    [url] = parse_answer(json.loads(skeleton)).image_urls
    taken = reader.take(url)
    assert taken is not None
    image, rest = taken
    with pytest.raises(InvalidImageError):
        image.complete(rest)
    assert _files(store.directory) == []


def test_payloads_no_url_points_at_are_discarded(store):
    body = json.dumps({"choices": [], "debug": data_url(BIG)}).encode()
    reader, skeleton = _read(store, body, [8192])
    assert len(skeleton) < 300
    assert [p for p in store.directory.iterdir() if is_own_temp_name(p.name)]
    reader.discard()
    assert _files(store.directory) == []


def test_each_streamed_image_is_handed_out_once(store):
    reader, skeleton = _read(store, _body(images=[data_url(BIG)]), [65536])
    [url] = parse_answer(json.loads(skeleton)).image_urls
    assert reader.take(url) is not None
    assert reader.take(url) is None
    assert reader.take("https://example.com/x.png") is None
