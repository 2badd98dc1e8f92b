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
Memory: the decoded pixels (Pillow keeps RGB at 4 bytes a pixel: 64 MiB at 4096x4096); trial
encodes go to a scratch file and the chosen one straight to its own. The pool's two threads bound
how many run at once.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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


class _Trials:
    """Trial encodes into one scratch file without a name (nothing left behind, whatever
    happens): a real file, so that Pillow encodes from C without holding the GIL (into a Python
    object it holds it, and the event loop waits)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._file = tempfile.TemporaryFile(dir=directory)

    def size_of(self, image: Image.Image, quality: int, icc: bytes | None) -> int:
        self._file.seek(0)
        self._file.truncate()
        image.save(self._file, "JPEG", quality=quality, icc_profile=icc)
        return self._file.tell()

    def close(self) -> None:
        self._file.close()


def _best_quality(
    trials: _Trials, image: Image.Image, max_bytes: int, low: int, high: int, icc: bytes | None
) -> tuple[int | None, int]:
    """The highest quality in [low, high] whose JPEG fits (binary search; size grows with
    quality): (that quality or None if even `low` is too big, the size at `low` or of the fit)."""
    best: int | None = None
    size = 0
    while low <= high:
        quality = (low + high) // 2
        trial = trials.size_of(image, quality, icc)
        if trial <= max_bytes:
            best, size, low = quality, trial, quality + 1
        else:
            if best is None:
                size = trial  # the last one tried is the lowest
            high = quality - 1
    return best, size


def _scaled(image: Image.Image, factor: float) -> Image.Image:
    long_side = max(image.size)
    target = max(MIN_LONG_SIDE, int(long_side * factor))
    if target >= long_side:
        return image
    ratio = target / long_side
    size = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
    return image.resize(size, Image.Resampling.LANCZOS)


def choose_encoding(
    trials: _Trials, image: Image.Image, max_bytes: int, icc: bytes | None = None
) -> tuple[Image.Image, int, bool]:
    """The pixels (`image` or a smaller copy) and JPEG quality to send under max_bytes: as big
    and as good as that allows. Blocking.

    (pixels, quality, fits): `fits` is False when even the smallest allowed (MIN_LONG_SIDE at
    QUALITY_MIN) is too big; that smallest is then what is returned.
    """
    current = image
    while True:
        quality, size = _best_quality(trials, current, max_bytes, QUALITY_FLOOR, QUALITY_TOP, icc)
        if quality is not None:
            return current, quality, True
        if max(current.size) <= MIN_LONG_SIDE:
            break
        # JPEG size goes roughly with the pixel count: shrink the sides by the square root.
        current = _scaled(current, math.sqrt(max_bytes / size) * _SCALE_MARGIN)
    quality, _ = _best_quality(trials, current, max_bytes, QUALITY_MIN, QUALITY_FLOOR - 1, icc)
    if quality is not None:
        return current, quality, True
    return current, QUALITY_MIN, False


def fit_for_sending(image: SavedImage, store: ImageStore, max_bytes: int) -> Outgoing:
    """The image as it goes out under `max_bytes`: itself, or a re-encode beside it. Blocking."""
    if image.size <= max_bytes:
        return Outgoing(image)
    trials = _Trials(store.directory)
    try:
        with Image.open(image.path) as source:
            source.load()
            icc = source.info.get("icc_profile")
            pixels, quality, fits = choose_encoding(trials, _as_rgb(source), max_bytes, icc)
            # Encoded once more, straight into its file (trials are not kept: less memory).
            with store.begin(stem=image.path.stem + SEND_SUFFIX) as pending:
                pending.write_with(
                    lambda file: pixels.save(file, "JPEG", quality=quality, icc_profile=icc)
                )
                saved = pending.commit(ImageInfo("JPEG", pixels.width, pixels.height))
    finally:
        trials.close()
    return Outgoing(image, saved, over_limit=not fits)


async def prepare_one(
    image: SavedImage, store: ImageStore, max_bytes: int, cpu: CpuPool
) -> Outgoing:
    """fit_for_sending in the CPU pool; an image under the limit costs nothing."""
    if image.size <= max_bytes:
        return Outgoing(image)
    return await cpu.run(fit_for_sending, image, store, max_bytes)


async def prepare_outgoing(
    images: Sequence[SavedImage], store: ImageStore, max_bytes: int, cpu: CpuPool
) -> list[Outgoing]:
    """prepare_one for each image, in order."""
    return [await prepare_one(image, store, max_bytes, cpu) for image in images]
