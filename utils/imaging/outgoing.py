"""Pictures too big to send as they are: a high-quality JPEG under the delivery limit.

A 4K answer is a 20-30 MB PNG. AstrBot's QQ adapter sends every image inline as base64 through
NapCat's websocket, and QQ refuses or times out on big pictures, so anything above the limit
goes out as a JPEG instead: full size while a quality of QUALITY_FLOOR or better fits, else
scaled down just enough (the long side never below MIN_LONG_SIDE), and only at that size lower
quality. JPEG rather than WebP: every AstrBot platform and QQ client shows it, and libjpeg
encodes 16 megapixels in about 0.1 s where WebP takes seconds.

The original stays in images/ (the cleanup task removes both after the retention time); the
re-encode is named after it (`<original stem>_send.jpg`) and written through the image store,
so it is atomic and recognisable to cleanup. Everything here blocks: run it in the CpuPool.
Memory: the decoded pixels (width x height x 3 bytes, 48 MiB at 4096x4096) plus one encoded
candidate; the pool's two threads bound how many run at once.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from ..core.workers import CpuPool
from .store import ImageInfo, ImageStore, SavedImage

QUALITY_TOP = 92
QUALITY_FLOOR = 80  # lowest quality at full size; below it, fewer pixels look better
QUALITY_MIN = 40  # at MIN_LONG_SIDE, the last resort
MIN_LONG_SIDE = 2048
SEND_SUFFIX = "_send"
# Scaling estimates the size from the pixel count; aim a little under so one step suffices.
_SCALE_MARGIN = 0.95


@dataclass(frozen=True)
class Outgoing:
    """What goes to the platform for one image, and the original it came from."""

    original: SavedImage
    reencoded: SavedImage | None = None  # None: the original goes out as it is
    over_limit: bool = False  # even the smallest re-encode is above the limit

    @property
    def sent(self) -> SavedImage:
        return self.reencoded or self.original


def _as_rgb(image: Image.Image) -> Image.Image:
    """RGB pixels for JPEG; transparency is flattened onto white. No copy when already RGB."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def _encode(image: Image.Image, quality: int, icc: bytes | None) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, icc_profile=icc)
    return out.getvalue()


def _best_quality(
    image: Image.Image, max_bytes: int, low: int, high: int, icc: bytes | None
) -> tuple[bytes | None, int]:
    """The highest quality in [low, high] whose JPEG fits (binary search; size grows with
    quality): (its bytes or None if even `low` is too big, the size at `low` or of the fit)."""
    best: bytes | None = None
    at_low = 0
    while low <= high:
        quality = (low + high) // 2
        data = _encode(image, quality, icc)
        if len(data) <= max_bytes:
            best, low = data, quality + 1
        else:
            at_low, high = len(data), quality - 1
    return best, len(best) if best is not None else at_low


def _scaled(image: Image.Image, factor: float) -> Image.Image:
    long_side = max(image.size)
    target = max(MIN_LONG_SIDE, int(long_side * factor))
    if target >= long_side:
        return image
    ratio = target / long_side
    size = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
    return image.resize(size, Image.Resampling.LANCZOS)


def encode_under(
    image: Image.Image, max_bytes: int, icc: bytes | None = None
) -> tuple[bytes, bool]:
    """A JPEG of `image` under max_bytes, as big and as good as that allows. Blocking.

    (data, fits): `fits` is False when even the smallest allowed (MIN_LONG_SIDE at QUALITY_MIN)
    is too big; the data is then that smallest one.
    """
    current = image
    while True:
        data, size = _best_quality(current, max_bytes, QUALITY_FLOOR, QUALITY_TOP, icc)
        if data is not None:
            return data, True
        if max(current.size) <= MIN_LONG_SIDE:
            break
        # JPEG size goes roughly with the pixel count: shrink the sides by the square root.
        current = _scaled(current, math.sqrt(max_bytes / size) * _SCALE_MARGIN)
    data, _ = _best_quality(current, max_bytes, QUALITY_MIN, QUALITY_FLOOR - 1, icc)
    if data is not None:
        return data, True
    return _encode(current, QUALITY_MIN, icc), False


def fit_for_sending(image: SavedImage, store: ImageStore, max_bytes: int) -> Outgoing:
    """The image as it goes out under `max_bytes`: itself, or a re-encode beside it. Blocking."""
    if image.size <= max_bytes:
        return Outgoing(image)
    with Image.open(image.path) as source:
        source.load()
        icc = source.info.get("icc_profile")
        pixels = _as_rgb(source)
        data, fits = encode_under(pixels, max_bytes, icc)
    with Image.open(io.BytesIO(data)) as encoded:
        width, height = encoded.size
    with store.begin(stem=image.path.stem + SEND_SUFFIX) as pending:
        pending.write(data)
        saved = pending.commit(ImageInfo("JPEG", width, height))
    return Outgoing(image, saved, over_limit=not fits)


async def prepare_outgoing(
    images: Sequence[SavedImage], store: ImageStore, max_bytes: int, cpu: CpuPool
) -> list[Outgoing]:
    """fit_for_sending for each image, in the CPU pool; small images cost nothing."""
    return [
        Outgoing(image)
        if image.size <= max_bytes
        else await cpu.run(fit_for_sending, image, store, max_bytes)
        for image in images
    ]
