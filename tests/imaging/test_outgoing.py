"""Pictures above the delivery limit go out as a JPEG under it, as large as the limit allows."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.support import images as img
from utils.core.workers import CpuPool
from utils.imaging.cleanup import sweep
from utils.imaging.outgoing import MIN_LONG_SIDE, fit_for_sending, prepare_outgoing
from utils.imaging.store import ImageStore, is_own_image_name

MIB = 1024 * 1024


@pytest.fixture
def store(tmp_path) -> ImageStore:
    return ImageStore(tmp_path / "images")


def _save(store: ImageStore, data: bytes):
    return store.save(data)


def _decoded(path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image.copy()


def _names(store: ImageStore) -> list[str]:
    return sorted(p.name for p in store.directory.iterdir())


def test_a_4k_png_goes_out_as_a_full_size_jpeg_under_the_limit(store, photo_4k):
    original = _save(store, photo_4k)
    assert original.size > 20 * MIB  # a 4K answer, as it arrives (20-30 MB)

    out = fit_for_sending(original, store, 5 * MIB)

    sent = out.reencoded
    assert sent is not None and not out.over_limit and out.sent == sent
    assert sent.size <= 5 * MIB and sent.path.stat().st_size == sent.size
    assert (sent.format, sent.width, sent.height) == ("JPEG", 4096, 4096)  # dimensions kept
    assert _decoded(sent.path).size == (4096, 4096)
    # It is the same picture: a downscaled comparison is close.
    a = _decoded(original.path).resize((64, 64))
    b = _decoded(sent.path).resize((64, 64))
    diffs = [
        abs(x - y)
        for pa, pb in zip(a.getdata(), b.getdata(), strict=True)
        for x, y in zip(pa, pb, strict=True)
    ]
    assert sum(diffs) / len(diffs) < 3
    # The original stays; both carry names cleanup knows, the re-encode named after it.
    assert original.path.read_bytes() == photo_4k
    assert sent.path.name == original.path.stem + "_send.jpg"
    assert all(is_own_image_name(n) for n in _names(store))
    assert _names(store) == sorted([original.path.name, sent.path.name])


def test_a_tight_limit_shrinks_the_picture_but_never_below_2048(store, photo_4k):
    original = _save(store, photo_4k)
    out = fit_for_sending(original, store, 1 * MIB)

    assert out.reencoded is not None and not out.over_limit
    assert out.reencoded.size <= 1 * MIB
    assert MIN_LONG_SIDE <= max(out.reencoded.width, out.reencoded.height) < 4096
    assert out.reencoded.width == out.reencoded.height  # the shape is kept


def test_an_impossible_limit_sends_the_smallest_allowed_and_says_so(store, photo_4k):
    original = _save(store, photo_4k)
    out = fit_for_sending(original, store, 50_000)

    assert out.over_limit and out.reencoded is not None
    assert max(out.reencoded.width, out.reencoded.height) == MIN_LONG_SIDE
    assert out.reencoded.size > 50_000


def test_a_picture_under_the_limit_goes_out_untouched(store):
    original = _save(store, img.noisy_png((300, 300)))
    out = fit_for_sending(original, store, 5 * MIB)
    assert out.reencoded is None and out.sent == original
    assert _names(store) == [original.path.name]


def test_a_small_but_heavy_picture_keeps_its_size_and_loses_quality_only(store):
    original = _save(store, img.noisy_png((1400, 1400)))  # ~5.9 MB of noise, under 2048 px
    out = fit_for_sending(original, store, 1 * MIB)
    assert out.reencoded is not None and out.reencoded.size <= 1 * MIB
    assert (out.reencoded.width, out.reencoded.height) == (1400, 1400)


def test_transparency_is_flattened_onto_white(store):
    # A big transparent picture: the left half clear, the right half blue.
    image = Image.new("RGBA", (2400, 1200), (0, 0, 0, 0))
    image.paste(Image.effect_noise((1200, 1200), 80).convert("RGBA"), (1200, 0))
    out_png = io.BytesIO()
    image.save(out_png, "PNG")
    original = _save(store, out_png.getvalue())
    out = fit_for_sending(original, store, original.size // 3)

    assert out.reencoded is not None
    decoded = _decoded(out.reencoded.path)
    assert decoded.mode == "RGB"
    assert all(v > 245 for v in decoded.getpixel((100, 600)))  # white where it was clear


def test_cleanup_removes_original_and_re_encode_alike(store, photo_4k):
    original = _save(store, photo_4k)
    out = fit_for_sending(original, store, 5 * MIB)
    report = sweep(store.directory, max_age=0.0, now=out.sent.path.stat().st_mtime + 1)
    assert report.removed == 2 and _names(store) == []


async def test_the_work_runs_in_the_cpu_pool_and_small_pictures_cost_nothing(store, photo_4k):
    small = _save(store, img.noisy_png((100, 100)))
    big = _save(store, photo_4k)
    cpu = CpuPool(1)
    try:
        small_out, big_out = await prepare_outgoing([small, big], store, 5 * MIB, cpu)
    finally:
        cpu.close()
    assert small_out.sent == small
    assert big_out.reencoded is not None and big_out.reencoded.size <= 5 * MIB
