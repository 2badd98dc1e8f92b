"""Validated, atomic storage of generated images under the plugin's images/ directory."""

from __future__ import annotations

import io
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .errors import InvalidImageError

# Pillow format name -> file extension. Raster formats chat platforms display; nothing else.
ALLOWED_FORMATS: dict[str, str] = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif"}
FILE_PREFIX = "gemini_image_"
TEMP_SUFFIX = ".part"
DEFAULT_MAX_PIXELS = 40_000_000


@dataclass(frozen=True)
class SavedImage:
    path: Path
    format: str
    width: int
    height: int
    size: int


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int


def inspect_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Check that data is a complete raster image of an allowed format and a sane size.

    The pixel limit is checked from the header before anything is decoded, so a decompression
    bomb costs nothing. Pillow's global MAX_IMAGE_PIXELS is left alone (it is process-wide).
    """
    if not data:
        raise InvalidImageError("empty image data")
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or ""
            width, height = img.size
            if fmt not in ALLOWED_FORMATS:
                raise InvalidImageError(f"unsupported image format {fmt or 'unknown'!r}")
            if width * height > max_pixels:
                raise InvalidImageError(f"image too large: {width}x{height} pixels")
            _check_complete(img, data)
    except InvalidImageError:
        raise
    except Exception as exc:  # Pillow raises many types for corrupt data
        raise InvalidImageError(f"not a valid image: {type(exc).__name__}: {exc}") from exc
    return ImageInfo(fmt, width, height)


def _check_complete(img: Image.Image, data: bytes) -> None:
    """Detect truncated or corrupt data as cheaply as the format allows."""
    if img.format == "PNG":
        img.verify()  # walks every chunk and checks CRCs without decoding pixels
        return
    if img.format == "JPEG":
        img.draft("RGB", (max(1, img.size[0] // 8), max(1, img.size[1] // 8)))
    img.load()  # raises on truncated data (LOAD_TRUNCATED_IMAGES stays False)


class ImageStore:
    """Writes validated images with unique names; a file is visible only once complete."""

    def __init__(self, directory: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.directory = directory
        self.max_pixels = max_pixels

    def save(self, data: bytes) -> SavedImage:
        """Validate then store. Blocking: call it through asyncio.to_thread."""
        info = inspect_image(data, self.max_pixels)
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d%H%M%S")
        name = f"{FILE_PREFIX}{stamp}_{uuid.uuid4().hex[:16]}.{ALLOWED_FORMATS[info.format]}"
        final = self.directory / name
        temp = self.directory / f".{name}{TEMP_SUFFIX}"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return SavedImage(final, info.format, info.width, info.height, len(data))
