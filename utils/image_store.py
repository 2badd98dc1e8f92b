"""Validated, atomic storage of generated images under the plugin's images/ directory.

Also the decoding of the base64 and data-URL forms images arrive in. Every function here blocks
(base64, Pillow, file writes): call them through asyncio.to_thread.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .errors import InvalidImageError

# Pillow format name -> file extension. Raster formats chat platforms display; nothing else.
ALLOWED_FORMATS: dict[str, str] = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif"}
FILE_PREFIX = "gemini_image_"
TEMP_PREFIX = "." + FILE_PREFIX
TEMP_SUFFIX = ".part"
DEFAULT_MAX_PIXELS = 40_000_000

# base64 is decoded and encoded in slices: one C call on a whole multi-megabyte image holds the
# GIL for 10-20 ms and stalls the event loop of every other request that long.
_B64_CHUNK = 256 * 1024  # characters; a multiple of 4
_URLSAFE_TO_STD = bytes.maketrans(b"-_", b"+/")
_WHITESPACE = b" \t\r\n\v\f"
# Our own names only: prefix, letters/digits/underscore, one allowed extension. No separators.
_OWN_NAME = re.compile(
    re.escape(FILE_PREFIX) + r"[A-Za-z0-9_]+\.(?:" + "|".join(ALLOWED_FORMATS.values()) + r")"
)


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


# --- decoding -----------------------------------------------------------------------------------


def decode_base64(text: str) -> bytes:
    """Decode base64 that may hold whitespace, lack padding or use the URL-safe alphabet.

    Anything else outside the alphabet is an error: garbage is never silently skipped.
    """
    out = bytearray()
    pending = b""
    try:
        for start in range(0, len(text), _B64_CHUNK):
            piece = text[start : start + _B64_CHUNK].encode("ascii")
            pending += piece.translate(_URLSAFE_TO_STD, _WHITESPACE)
            whole = len(pending) - len(pending) % 4
            # Padding may only end the data: keep a quantum holding '=' for the final step.
            if whole and b"=" in pending[whole - 4 : whole]:
                whole -= 4
            out += base64.b64decode(pending[:whole], validate=True)
            pending = pending[whole:]
        tail = pending.rstrip(b"=")
        if len(tail) % 4 == 1 or len(pending) - len(tail) > 2:
            raise InvalidImageError("bad base64 image data: truncated or bad padding")
        out += base64.b64decode(tail + b"=" * (-len(tail) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise InvalidImageError(f"bad base64 image data: {exc}") from exc
    if not out:
        raise InvalidImageError("empty base64 image data")
    return bytes(out)


def encode_base64(data: bytes) -> str:
    """Standard base64, in slices (see _B64_CHUNK)."""
    step = _B64_CHUNK // 4 * 3
    view = memoryview(data)
    return "".join(
        base64.b64encode(view[i : i + step]).decode("ascii") for i in range(0, len(data), step)
    )


def split_data_url(url: str) -> tuple[str, str]:
    """(label, base64 payload) of a `data:<label>;base64,<payload>` URL.

    The label is only informational: the stored format always comes from the bytes.
    """
    head, sep, payload = url.lstrip().partition(",")
    if not sep or not head[:5].lower() == "data:" or not head.lower().endswith(";base64"):
        raise InvalidImageError("image is not a base64 data URL")
    return head[5:-7].strip()[:100], payload


def decode_data_url(url: str) -> bytes:
    return decode_base64(split_data_url(url)[1])


# --- validation ---------------------------------------------------------------------------------


def inspect_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Check that data is a complete raster image of an allowed format and a sane size.

    The pixel limit is checked from the header before anything is decoded, so a decompression
    bomb costs nothing. Pillow's global MAX_IMAGE_PIXELS is left alone (it is process-wide).
    """
    if not data:
        raise InvalidImageError("empty image data")
    try:
        with Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS)) as img:
            fmt = img.format or ""
            width, height = img.size
            if fmt not in ALLOWED_FORMATS:
                raise InvalidImageError(f"unsupported image format {fmt or 'unknown'!r}")
            if width < 1 or height < 1 or width * height > max_pixels:
                raise InvalidImageError(f"image too large: {width}x{height} pixels")
            _check_complete(img)
    except InvalidImageError:
        raise
    except Exception as exc:  # Pillow raises many types for corrupt data
        raise InvalidImageError(
            f"not a valid image ({_sniff(data)}): {type(exc).__name__}: {exc}"
        ) from exc
    return ImageInfo(fmt, width, height)


def _check_complete(img: Image.Image) -> None:
    """Detect truncated or corrupt data as cheaply as the format allows."""
    if img.format == "PNG":
        img.verify()  # walks every chunk and checks CRCs without decoding pixels
        return
    if img.format == "JPEG":
        img.draft("RGB", (max(1, img.size[0] // 8), max(1, img.size[1] // 8)))
    img.load()  # raises on truncated data (LOAD_TRUNCATED_IMAGES stays False)


def _sniff(data: bytes) -> str:
    """A short, log-safe description of what the bytes start with."""
    head = data[:64].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")):
        return "svg/xml"
    if head.startswith((b"<!doctype", b"<html", b"<")):
        return "html/text"
    return f"{len(data)} bytes starting {data[:4].hex()}"


# --- storage ------------------------------------------------------------------------------------


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
        final = self.path_of(name)
        temp = self.directory / f".{name}{TEMP_SUFFIX}"
        try:
            # O_EXCL: never write through a file (or symlink) someone put at the temp name.
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return SavedImage(final, info.format, info.width, info.height, len(data))

    def save_data_url(self, url: str) -> SavedImage:
        return self.save(decode_data_url(url))

    def path_of(self, name: str) -> Path:
        """The path of one of our images; refuses any name that could point elsewhere."""
        if not is_own_image_name(name):
            raise InvalidImageError(f"not an image name of ours: {name[:80]!r}")
        return self.directory / name


def is_own_image_name(name: str) -> bool:
    """True for names the store creates (never a path, never a temp file)."""
    return _OWN_NAME.fullmatch(name) is not None


def is_own_temp_name(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX) and "/" not in name
