"""Validated storage: decoding, format checks, names that stay inside images/, nothing partial."""

from __future__ import annotations

import base64
import io
import os

import pytest
from PIL import Image

from tests import images as img
from tests.fakes.openrouter import make_png
from utils.errors import InvalidImageError
from utils.image_store import (
    FILE_PREFIX,
    ImageStore,
    decode_base64,
    decode_data_url,
    inspect_image,
    is_own_image_name,
    is_own_temp_name,
)

# A length that is not a multiple of 3, so its base64 needs padding.
PNG = next(p for p in (make_png("store" + "!" * n) for n in range(3)) if len(p) % 3)
ENCODED = base64.b64encode(PNG).decode()


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
