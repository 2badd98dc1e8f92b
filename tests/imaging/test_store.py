"""Validated storage: decoding, format checks, names that stay inside images/, nothing partial."""

from __future__ import annotations

import base64
import io
import os
import random
from pathlib import Path

import pytest
from PIL import Image

from tests.fakes.openrouter import make_png
from tests.support import images as img
from utils.core.errors import InvalidImageError
from utils.imaging.store import (
    FILE_PREFIX,
    Base64Decoder,
    ImageStore,
    PngCheck,
    decode_base64,
    decode_data_url,
    inspect_file,
    inspect_image,
    is_own_image_name,
    is_own_temp_name,
)

# A length that is not a multiple of 3, so its base64 needs padding.
PNG = next(p for p in (make_png("store" + "!" * n) for n in range(3)) if len(p) % 3)
ENCODED = base64.b64encode(PNG).decode()
STREAMED = img.noisy_png((160, 160))  # the size of image written in pieces


@pytest.mark.parametrize(
    "text",
    [
        ENCODED,
        ENCODED.rstrip("="),
        base64.urlsafe_b64encode(PNG).decode(),
        "\n".join(ENCODED[i : i + 64] for i in range(0, len(ENCODED), 64)),
        "  " + ENCODED + "\t\r\n",
    ],
)
def test_decode_base64_tolerates_transport_variants(text):
    assert decode_base64(text) == PNG


@pytest.mark.parametrize("text", ["", "====", "abc*def", "QUJD\x00", "A", "QUJDR"])
def test_decode_base64_refuses_garbage(text):
    with pytest.raises(InvalidImageError):
        decode_base64(text)


def test_data_url_label_is_not_trusted():
    assert decode_data_url("data:image/../../x;base64," + img.b64(PNG)) == PNG
    assert decode_data_url("DATA:image/png;BASE64," + img.b64(PNG)) == PNG
    for bad in ("data:image/png," + img.b64(PNG), "image/png;base64," + img.b64(PNG), "no comma"):
        with pytest.raises(InvalidImageError):
            decode_data_url(bad)


@pytest.mark.parametrize(
    ("fmt", "expected"), [("PNG", "PNG"), ("JPEG", "JPEG"), ("WEBP", "WEBP"), ("GIF", "GIF")]
)
def test_allowed_raster_formats_are_detected_from_the_bytes(fmt, expected):
    assert inspect_image(img.solid((1, 2, 3), fmt=fmt)).format == expected


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(img.solid((1, 2, 3), fmt="BMP"), id="bmp"),
        pytest.param(img.solid((1, 2, 3), fmt="TIFF"), id="tiff"),
        pytest.param(img.SVG, id="svg"),
        pytest.param(img.HTML, id="html"),
        pytest.param(b"", id="empty"),
        pytest.param(PNG[: len(PNG) - 20], id="truncated-png"),
        pytest.param(img.solid((1, 2, 3), (400, 300), fmt="JPEG")[:-400], id="truncated-jpeg"),
        pytest.param(img.bomb_png(10_000, 5_000), id="pixel-bomb"),
    ],
)
def test_anything_else_is_refused(data):
    with pytest.raises(InvalidImageError):
        inspect_image(data)


def test_a_png_with_a_corrupt_chunk_is_refused():
    damaged = bytearray(PNG)
    damaged[60] ^= 0xFF
    with pytest.raises(InvalidImageError):
        inspect_image(bytes(damaged))


def test_save_names_by_detected_format_and_leaves_no_temp(tmp_path):
    store = ImageStore(tmp_path / "images")
    saved = store.save(img.solid((9, 9, 9), fmt="JPEG"))
    assert saved.path.parent == tmp_path / "images"
    assert saved.path.name.startswith(FILE_PREFIX) and saved.path.suffix == ".jpg"
    assert is_own_image_name(saved.path.name)
    assert os.listdir(tmp_path / "images") == [saved.path.name]
    with Image.open(io.BytesIO(saved.path.read_bytes())) as image:
        assert image.format == "JPEG"


def test_refused_data_never_reaches_the_disk(tmp_path):
    store = ImageStore(tmp_path / "images")
    for bad in (img.SVG, img.HTML, PNG[:100]):
        with pytest.raises(InvalidImageError):
            store.save(bad)
    assert not (tmp_path / "images").exists() or os.listdir(tmp_path / "images") == []


def test_saves_never_collide(tmp_path):
    store = ImageStore(tmp_path)
    names = {store.save(PNG).path.name for _ in range(50)}
    assert len(names) == 50


@pytest.mark.parametrize(
    "name",
    [
        "../gemini_image_x.png",
        "/etc/passwd",
        "gemini_image_x.svg",
        "gemini_image_../../x.png",
        "other.png",
        ".gemini_image_x.png.part",
        "gemini_image_x.png/..",
    ],
)
def test_path_of_refuses_names_that_are_not_ours(tmp_path, name):
    with pytest.raises(InvalidImageError):
        ImageStore(tmp_path).path_of(name)


def test_temp_names():
    assert is_own_temp_name(".gemini_image_20261101_ab.png.part")
    assert not is_own_temp_name("gemini_image_20261101_ab.png")
    assert not is_own_temp_name(".other.part")


# --- base64 letters -----------------------------------------------------------------------------


def test_feed_letters_in_any_pieces():
    rng = random.Random(5)
    for _ in range(500):
        data = rng.randbytes(rng.randint(1, 200))
        text = base64.b64encode(data).rstrip(b"=")
        decoder, out, pos = Base64Decoder(), [], 0
        while pos < len(text):
            size = rng.randint(0, 9)
            decoded = decoder.feed_letters(text[pos : pos + size])
            assert decoded is not None
            out += decoded
            pos += size
        assert b"".join(out) + decoder.finish() == data


@pytest.mark.parametrize("bad", [b"QUJD QUJD", b"QUJD=", b"QU)D", b"QUJDQ*", b"\xff\xfe"])
def test_feed_letters_refuses_anything_else_and_consumes_nothing(bad):
    decoder = Base64Decoder()
    assert decoder.feed_letters(b"QU") == []
    assert decoder.feed_letters(bad) is None
    assert decoder.feed_letters(b"JD") == [b"ABC"]  # the refused text left no trace


# --- PNG structure and pending images -----------------------------------------------------------


def _check(data: bytes, seed: int = 0) -> PngCheck:
    check, rng, pos = PngCheck(), random.Random(seed), 0
    while pos < len(data):
        size = rng.randint(1, 5000)
        check.feed(data[pos : pos + size])
        pos += size
    return check


def test_png_check_in_any_pieces():
    for seed, png in enumerate([STREAMED, PNG, img.transparent_png(), img.bomb_png(500, 400)]):
        assert _check(png, seed).verdict() is True
    assert _check(STREAMED + b"trailing bytes").verdict() is True  # ignored, as Pillow does


def test_png_check_finds_damage():
    damaged = bytearray(STREAMED)
    damaged[len(STREAMED) // 2] ^= 0x01
    with pytest.raises(InvalidImageError, match="bad CRC"):
        _check(bytes(damaged)).verdict()
    with pytest.raises(InvalidImageError, match="truncated"):
        _check(STREAMED[:-10]).verdict()
    assert _check(img.solid((1, 2, 3), fmt="JPEG")).verdict() is False  # for Pillow to judge


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.fixture
def store(tmp_path) -> ImageStore:
    return ImageStore(tmp_path / "images")


def test_a_pending_image_is_invisible_until_committed(store):
    with store.begin(check_png=True) as pending:
        for start in range(0, len(STREAMED), 1000):
            pending.write(STREAMED[start : start + 1000])
        [temp] = _files(store.directory)
        assert is_own_temp_name(temp)  # hidden, and the cleanup knows it
        saved = pending.commit()
    assert _files(store.directory) == [saved.path.name]
    assert saved.path.read_bytes() == STREAMED and (saved.width, saved.height) == (160, 160)


@pytest.mark.parametrize(
    "data", [STREAMED[:-10], img.HTML, img.solid((1, 2, 3), fmt="JPEG")[:-200], b"\0" * 5000]
)
def test_a_pending_image_that_fails_validation_leaves_nothing(store, data):
    with store.begin(check_png=True) as pending:
        pending.write(data)
        with pytest.raises(InvalidImageError):
            pending.commit()
    assert _files(store.directory) == []


def test_a_pending_image_left_without_commit_is_removed(store):
    with pytest.raises(RuntimeError), store.begin() as pending:
        pending.write(STREAMED)
        raise RuntimeError("cancelled")
    assert _files(store.directory) == []


def test_inspect_file_matches_inspect_image(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(STREAMED)
    info = inspect_file(path)
    assert (info.format, info.width, info.height) == ("PNG", 160, 160)
    path.write_bytes(img.SVG)
    with pytest.raises(InvalidImageError, match="svg"):
        inspect_file(path)
