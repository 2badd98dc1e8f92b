"""Validated, atomic storage of generated images under the plugin's images/ directory.

Also the decoding of the base64 and data-URL forms images arrive in, whole or piece by piece.
Everything here blocks (base64, Pillow, file writes): call it off the event loop, except
Base64Decoder.feed_letters on one small piece at a time (see utils/openrouter/answer_stream.py).
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
import struct
import sys
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image

from ..core.errors import InvalidImageError
from .held import HeldFiles

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
_CLEANED_CHARS = tuple(bytes([c]) for c in b"-_" + _WHITESPACE)
_STD_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
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


class Base64Decoder:
    """Incremental base64 decoding: feed text in pieces, get the bytes of each complete quantum.

    Tolerates whitespace, missing padding and the URL-safe alphabet; anything else outside the
    alphabet, or padding anywhere but at the very end, is an error: garbage is never skipped.
    """

    def __init__(self) -> None:
        self._pending = b""  # cleaned text not decoded yet: a partial quantum, or padding

    def feed(self, text: bytes) -> bytes:
        if _needs_cleaning(text):
            text = text.translate(_URLSAFE_TO_STD, _WHITESPACE)
        pending = self._pending + text if self._pending else text
        whole = len(pending) - len(pending) % 4
        # Padding may only end the data: keep a quantum holding '=' for the final step.
        if whole and b"=" in pending[whole - 4 : whole]:
            whole -= 4
        self._pending = pending[whole:]
        return _b64decode(pending[:whole]) if whole else b""

    def feed_letters(self, text: bytes) -> list[bytes] | None:
        """feed() for text of base64 letters only (no padding, no whitespace): the streaming
        fast path, which copies no more than it must. Returns the decoded pieces; None, with
        nothing consumed, if the text holds anything else. Use it before any feed()."""
        if b"=" in text:
            return None
        if b"-" in text or b"_" in text:
            text = text.translate(_URLSAFE_TO_STD)
        quanta: list[bytes | memoryview] = []
        start = 0
        if self._pending:  # complete the quantum left over from the previous piece
            start = min(4 - len(self._pending), len(text))
            head = self._pending + text[:start]
            if len(head) < 4:
                return self._keep(head)
            quanta.append(head)
        whole = start + (len(text) - start) // 4 * 4
        if whole > start:
            quanta.append(memoryview(text)[start:whole])
        rest = text[whole:]
        if rest.translate(None, _STD_LETTERS):
            return None
        try:
            decoded = [_strict_b64decode(quantum) for quantum in quanta]
        except (binascii.Error, ValueError):
            return None
        self._pending = rest
        return decoded

    def _keep(self, pending: bytes) -> list[bytes] | None:
        if pending.translate(None, _STD_LETTERS):
            return None
        self._pending = pending
        return []

    def finish(self) -> bytes:
        """The last bytes; raises InvalidImageError if the text ended mid-quantum."""
        pending, self._pending = self._pending, b""
        tail = pending.rstrip(b"=")
        if len(tail) % 4 == 1 or len(pending) - len(tail) > 2:
            raise InvalidImageError("bad base64 image data: truncated or bad padding")
        return _b64decode(tail + b"=" * (-len(tail) % 4))


def _needs_cleaning(text: bytes) -> bool:
    # Membership tests run at memchr speed; translate() copies every byte. Streamed answers
    # hardly ever need it.
    return any(char in text for char in _CLEANED_CHARS)


def _strict_b64decode(text: bytes | memoryview) -> bytes:
    """Decode letters-only base64 without copying the input first (3.11+); raises
    binascii.Error on anything but letters and final padding."""
    if sys.version_info >= (3, 11):
        return binascii.a2b_base64(text, strict_mode=True)
    return base64.b64decode(bytes(text), validate=True)


def _b64decode(text: bytes) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidImageError(f"bad base64 image data: {exc}") from exc


def decode_base64(text: str) -> bytes:
    """Decode base64 text as Base64Decoder does, in slices (see _B64_CHUNK)."""
    decoder = Base64Decoder()
    out = bytearray()
    for start in range(0, len(text), _B64_CHUNK):
        try:
            piece = text[start : start + _B64_CHUNK].encode("ascii")
        except UnicodeEncodeError as exc:
            raise InvalidImageError(f"bad base64 image data: {exc}") from exc
        out += decoder.feed(piece)
    out += decoder.finish()
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
    return _inspect(io.BytesIO(data), max_pixels, lambda: _sniff(data[:64], len(data)))


def inspect_file(
    path: Path, max_pixels: int = DEFAULT_MAX_PIXELS, png_checked: bool = False
) -> ImageInfo:
    """inspect_image for a file: read in pieces as Pillow needs them, never whole.

    `png_checked`: a PngCheck has found the file a complete, intact PNG, so only the header
    is left to read.
    """
    size = os.stat(path).st_size
    if not size:
        raise InvalidImageError("empty image data")

    def sniff() -> str:
        with open(path, "rb") as handle:
            return _sniff(handle.read(64), size)

    return _inspect(path, max_pixels, sniff, png_checked)


def _inspect(
    source: io.BytesIO | Path,
    max_pixels: int,
    sniff: Callable[[], str],
    png_checked: bool = False,
) -> ImageInfo:
    try:
        with Image.open(source, formats=list(ALLOWED_FORMATS)) as img:
            fmt = img.format or ""
            width, height = img.size
            if fmt not in ALLOWED_FORMATS:
                raise InvalidImageError(f"unsupported image format {fmt or 'unknown'!r}")
            if width < 1 or height < 1 or width * height > max_pixels:
                raise InvalidImageError(f"image too large: {width}x{height} pixels")
            if not (png_checked and fmt == "PNG"):
                _check_complete(img)
    except InvalidImageError:
        raise
    except Exception as exc:  # Pillow raises many types for corrupt data
        raise InvalidImageError(
            f"not a valid image ({sniff()}): {type(exc).__name__}: {exc}"
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


def _sniff(head: bytes, size: int) -> str:
    """A short, log-safe description of what the bytes start with."""
    text = head.lstrip().lower()
    if text.startswith((b"<svg", b"<?xml")):
        return "svg/xml"
    if text.startswith((b"<!doctype", b"<html", b"<")):
        return "html/text"
    return f"{size} bytes starting {head[:4].hex()}"


class PngCheck:
    """Checks a PNG's structure as its bytes go by: every chunk's CRC, up to IEND.

    What Pillow's verify() does, but piece by piece while an image is written, so the check
    costs nothing at the end (zlib.crc32 releases the GIL, letting it overlap with the
    decoding on the event loop). Bytes that do not start with the PNG signature are left to
    Pillow: `is_png` becomes False.
    """

    SIGNATURE = b"\x89PNG\r\n\x1a\n"

    def __init__(self) -> None:
        self.is_png: bool | None = None  # None until the signature is complete
        self.complete = False  # IEND reached with every CRC right
        self.error = ""
        self._state = "signature"
        self._need = len(self.SIGNATURE)  # bytes the current field still needs
        self._field = b""  # bytes of a signature, chunk header or CRC read so far
        self._type = b""
        self._crc = 0

    @property
    def settled(self) -> bool:
        return self.complete or bool(self.error) or self.is_png is False

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        pos = 0
        while pos < len(view) and not self.settled:
            take = min(self._need, len(view) - pos)
            if self._state == "data":
                self._crc = zlib.crc32(view[pos : pos + take], self._crc)
                self._need -= take
                if not self._need:
                    self._state, self._need = "crc", 4
            else:
                self._field += view[pos : pos + take]
                self._need -= take
                if not self._need:
                    field, self._field = self._field, b""
                    self._end_field(field)
            pos += take

    def _end_field(self, field: bytes) -> None:
        if self._state == "signature":
            self.is_png = field == self.SIGNATURE
            self._state, self._need = "header", 8
        elif self._state == "header":
            length, self._type = struct.unpack(">I4s", field)
            if length > 0x7FFFFFFF:
                self.error = f"chunk length {length} out of range"
            self._crc = zlib.crc32(self._type)
            self._state, self._need = ("data", length) if length else ("crc", 4)
        elif struct.unpack(">I", field)[0] != self._crc:
            self.error = f"bad CRC in {self._type.decode('latin-1')!r} chunk"
        elif self._type == b"IEND":
            self.complete = True
        else:
            self._state, self._need = "header", 8

    def verdict(self) -> bool:
        """True: a complete, intact PNG. False: not a PNG at all (ask Pillow).
        Raises InvalidImageError for a broken or truncated PNG."""
        if self.error:
            raise InvalidImageError(f"not a valid image (png): {self.error}")
        if self.is_png and not self.complete:
            raise InvalidImageError("not a valid image (png): truncated before IEND")
        return self.complete


# --- storage ------------------------------------------------------------------------------------


class ImageStore:
    """Writes validated images with unique names; a file is visible only once complete."""

    def __init__(self, directory: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.directory = directory
        self.max_pixels = max_pixels
        self.held = HeldFiles()  # what the cleanup must leave alone (see held.py)

    def save(self, data: bytes) -> SavedImage:
        """Validate then store. Blocking: call it through asyncio.to_thread."""
        info = inspect_image(data, self.max_pixels)
        with self.begin() as pending:
            pending.write(data)
            return pending.commit(info)

    def save_data_url(self, url: str) -> SavedImage:
        return self.save(decode_data_url(url))

    def begin(self, check_png: bool = False, stem: str | None = None) -> PendingImage:
        """A new image written in pieces (see PendingImage). Blocking.

        `stem` names it after another of our images (a re-encode beside its original); by
        default it gets a new unique name.
        """
        return PendingImage(self, check_png, stem)

    def path_of(self, name: str) -> Path:
        """The path of one of our images; refuses any name that could point elsewhere."""
        if not is_own_image_name(name):
            raise InvalidImageError(f"not an image name of ours: {name[:80]!r}")
        return self.directory / name


class PendingImage:
    """An image being written under a hidden temp name, visible only once commit() validated it.

    Used as a context manager: leaving the block without a commit removes the temp file.
    Blocking, like the rest of this module.
    """

    def __init__(self, store: ImageStore, check_png: bool = False, stem: str | None = None) -> None:
        self._store = store
        # Checked while written, so that commit() need not read the file again.
        self._png = PngCheck() if check_png else None
        if stem is not None and not is_own_image_name(f"{stem}.png"):
            raise InvalidImageError(f"not an image name of ours: {stem[:80]!r}")
        self._stem = stem or f"{FILE_PREFIX}{time.strftime('%Y%m%d%H%M%S')}_{uuid.uuid4().hex[:16]}"
        self.temp = store.directory / f".{self._stem}{TEMP_SUFFIX}"
        # O_EXCL: never write through a file (or symlink) someone put at the temp name.
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            fd = os.open(self.temp, flags, 0o644)
        except FileNotFoundError:  # the first image, or the directory was removed
            store.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.temp, flags, 0o644)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self._committed = False
        self.size = 0

    def write(self, data: bytes) -> None:
        if self._file is None:
            raise ValueError("write to a closed image")
        self._file.write(data)
        self.size += len(data)
        if self._png is not None:
            self._png.feed(data)

    def write_with(self, save: Callable[[BinaryIO], object]) -> None:
        """Let `save` write the image through the file itself: encoders that get a real file
        (Pillow's) write it from C without holding the GIL the event loop needs. Only for an
        image not written to otherwise; not PNG-checked (commit with an ImageInfo)."""
        if self._file is None or self.size or self._png is not None:
            raise ValueError("write_with needs a fresh, unchecked image")
        save(self._file)
        self._file.flush()
        self.size = os.fstat(self._file.fileno()).st_size

    def commit(self, info: ImageInfo | None = None) -> SavedImage:
        """Validate (unless `info` says it was checked already) and publish under its own name."""
        try:
            self._close()
            if info is None:
                png_checked = self._png is not None and self._png.verdict()
                info = inspect_file(self.temp, self._store.max_pixels, png_checked)
            final = self._store.path_of(f"{self._stem}.{ALLOWED_FORMATS[info.format]}")
            os.replace(self.temp, final)
        except BaseException:
            self.discard()
            raise
        self._committed = True
        return SavedImage(final, info.format, info.width, info.height, self.size)

    def discard(self) -> None:
        self._close()
        self.temp.unlink(missing_ok=True)

    def _close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()

    def __enter__(self) -> PendingImage:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._committed:
            self.discard()  # leave nothing behind


def is_own_image_name(name: str) -> bool:
    """True for names the store creates (never a path, never a temp file)."""
    return _OWN_NAME.fullmatch(name) is not None


def is_own_temp_name(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX) and "/" not in name
