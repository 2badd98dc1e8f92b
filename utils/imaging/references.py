"""Reference images: found in the message, its quoted reply and merged-forward messages, plus
avatars; loaded, shrunk and re-encoded.

Sources are whatever AstrBot's adapters put into `Image` components: an http(s) URL (QQ through
aiocqhttp fills `url` with the CDN link and `file` with a bare name), a local file (`path`,
`file:///...` or an absolute path), or base64 (`base64://...` or a data URL). Each image is capped
in bytes, pixels and time; one that fails is skipped and reported, never fatal on its own.
Pictures come first, in message order; avatars (utils/chat/sources.py finds them) follow, and
all of them share `max_reference_images`. A continued edit's remembered pictures (our own
files, utils/chat/memory.py) go ahead of them all.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiohttp
from astrbot.api import logger
from astrbot.api.message_components import BaseMessageComponent, Forward, Image, Reply
from PIL import Image as PILImage
from PIL import features

from ..core.errors import DownloadError, InvalidImageError, ReferenceImageError
from ..core.settings import Settings
from ..core.workers import CpuPool
from .downloads import describe_url, fetch_bytes, is_http_url
from .store import (
    DEFAULT_MAX_PIXELS,
    decode_base64,
    decode_data_url,
    encode_base64,
    inspect_image,
)

# Formats we decode from users. Deliberately short: e.g. EPS would run Ghostscript.
# ("JPEG" also opens MPO, the JPEG-with-extra-frames many phone cameras write.)
INPUT_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
# JPEG at 85 with optimised Huffman tables: a 4000x3000 phone photo shrunk to 2048 px uploads
# as ~0.19x its file size (base64 included) instead of ~0.28x at 90, with no visible loss; the
# model sees the picture, not the file. (optimize is lossless and costs ~10 ms per image.)
JPEG_QUALITY = 85
WEBP_QUALITY = 90
_MAX_REPLY_DEPTH = 2
_EXIF_ORIENTATION = 0x0112
_ORIENTATION_FIX = {
    2: PILImage.Transpose.FLIP_LEFT_RIGHT,
    3: PILImage.Transpose.ROTATE_180,
    4: PILImage.Transpose.FLIP_TOP_BOTTOM,
    5: PILImage.Transpose.TRANSPOSE,
    6: PILImage.Transpose.ROTATE_270,
    7: PILImage.Transpose.TRANSVERSE,
    8: PILImage.Transpose.ROTATE_90,
}
# The media type of each format the store keeps.
_MIME_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
_DOWNLOAD_REASONS = {
    "timeout": ReferenceImageError.TIMEOUT,
    "too_large": ReferenceImageError.TOO_LARGE,
}


@dataclass(frozen=True)
class ReferenceOptions:
    max_images: int
    max_side: int
    max_bytes: int
    timeout: float
    max_pixels: int = DEFAULT_MAX_PIXELS

    @classmethod
    def from_settings(
        cls, settings: Settings, time_left: float, model_limit: int | None = None
    ) -> ReferenceOptions:
        """Downloads end within their own timeout and the `time_left` of the run; at most the
        configured number of pictures, and at most `model_limit`, what the model takes."""
        return cls(
            max_images=max_reference_images(settings, model_limit),
            max_side=settings.reference_max_side,
            max_bytes=settings.download_max_bytes,
            timeout=max(0.5, min(settings.download_timeout, time_left)),
        )


def max_reference_images(settings: Settings, model_limit: int | None = None) -> int:
    """How many reference pictures a request may send: the configured number, at most what the
    model takes (`model_limit`), at least one."""
    limit = settings.max_reference_images
    return limit if model_limit is None else max(1, min(limit, model_limit))


@dataclass(frozen=True)
class ImageSource:
    kind: str  # "url", "file" or "base64"
    value: str

    def describe(self) -> str:
        """Log-safe: no query strings, no base64 payloads."""
        if self.kind == "url":
            return describe_url(self.value)
        if self.kind == "file":
            return f"file {Path(self.value).name}"
        return f"base64 ({len(self.value)} chars)"


@dataclass(frozen=True)
class PreparedImage:
    """A reference image ready for the request body."""

    mime: str
    data_url: str
    width: int
    height: int
    source_bytes: int
    encoded_bytes: int


@dataclass(frozen=True)
class References:
    images: tuple[PreparedImage, ...] = ()
    # Per-image problems and the over-limit note; each is worded for the user by user_message().
    problems: tuple[ReferenceImageError, ...] = ()
    found: int = 0
    avatars: int = 0  # how many of `images` are avatars (they come last)
    remembered: int = 0  # how many of `images` are remembered pictures (they come first)

    @property
    def data_urls(self) -> tuple[str, ...]:
        return tuple(image.data_url for image in self.images)


@dataclass(frozen=True)
class Avatar:
    """A person's avatar as a reference picture: `image` points at it (an http(s) URL)."""

    image: Image
    user_id: str
    name: str  # as the chat shows the person; "" when unknown
    own: bool = False  # the requester's own avatar


@dataclass(frozen=True)
class ReferenceSources:
    """What one request may send as references, before anything is downloaded."""

    pictures: tuple[Image, ...] = ()  # message, quoted message, merged forwards: in order
    avatars: tuple[Avatar, ...] = ()  # after the pictures
    # Found while looking (a forward that could not be fetched, avatars this platform lacks).
    problems: tuple[ReferenceImageError, ...] = ()
    # The pictures a continued edit goes on from (files of ours), ahead of everything else.
    remembered: tuple[Image, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.remembered or self.pictures or self.avatars)

    def wanted(self, use_images: bool) -> int:
        """How many would be sent: the pictures only when `use_images`, the remembered ones
        and the avatars always (they are here only when wanted)."""
        return len(self.remembered) + (len(self.pictures) if use_images else 0) + len(self.avatars)


# --- finding images -----------------------------------------------------------------------------


def image_components(
    chain: Iterable[BaseMessageComponent] | None,
    forwards: Mapping[str, Sequence[Image]] | None = None,
    depth: int = 0,
) -> list[Image]:
    """Images of a message chain in order; a quoted reply and a merged-forward message (its
    fetched contents in `forwards`, by forward id) contribute their images where they sit."""
    found: list[Image] = []
    for component in chain or ():
        if isinstance(component, Image):
            found.append(component)
        elif isinstance(component, Reply) and depth < _MAX_REPLY_DEPTH:
            found.extend(image_components(component.chain, forwards, depth + 1))
        elif isinstance(component, Forward) and forwards:
            found.extend(forwards.get(str(component.id), ()))
    return found


def forward_ids(chain: Iterable[BaseMessageComponent] | None, depth: int = 0) -> list[str]:
    """Ids of the merged-forward messages in a chain (quoted replies included), in order."""
    found: list[str] = []
    for component in chain or ():
        if isinstance(component, Forward) and component.id:
            found.append(str(component.id))
        elif isinstance(component, Reply) and depth < _MAX_REPLY_DEPTH:
            found.extend(forward_ids(component.chain, depth + 1))
    return list(dict.fromkeys(found))


def _local_path(value: str) -> str | None:
    if value.lower().startswith("file://"):
        parts = urlsplit(value)
        value = unquote(parts.path)
        if parts.netloc and parts.netloc != "localhost":  # file://host/share on Windows
            value = f"//{parts.netloc}{value}"
        if re.match(r"^/[A-Za-z]:[/\\]", value):  # file:///C:/x.jpg
            value = value[1:]
    path = Path(value)
    # Only absolute paths: QQ puts bare names like "ABCD.jpg" into `file` that are not files here.
    return str(path) if path.is_absolute() and path.is_file() else None


def source_of(image: Image) -> ImageSource | None:
    """Where the bytes of an Image component can be had; a local file wins over a download."""
    candidates = [str(v).strip() for v in (image.path, image.file, image.url) if v]
    for value in candidates:
        low = value[:16].lower()
        if low.startswith("base64://"):
            return ImageSource("base64", value[len("base64://") :])
        if low.startswith("data:"):
            return ImageSource("base64", value)
        if not is_http_url(value):
            path = _local_path(value)
            if path:
                return ImageSource("file", path)
    for value in candidates:
        if is_http_url(value):
            return ImageSource("url", value)
    return None


# --- loading and preparing ----------------------------------------------------------------------


def _read_file(path: str, max_bytes: int) -> bytes:
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
        raise ReferenceImageError(f"{path!r} is not a regular file", ReferenceImageError.SOURCE)
    if info.st_size > max_bytes:
        raise ReferenceImageError(
            f"file of {info.st_size} bytes, cap {max_bytes}", ReferenceImageError.TOO_LARGE
        )
    with open(path, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ReferenceImageError(
            f"file grew past {max_bytes} bytes", ReferenceImageError.TOO_LARGE
        )
    return data


def _decode_inline(value: str, max_bytes: int) -> bytes:
    # base64 is 4/3 of the bytes: refuse before decoding anything far too big.
    if len(value) > max_bytes * 4 // 3 + 1024:
        raise ReferenceImageError(
            f"inline image of ~{len(value) * 3 // 4} bytes, cap {max_bytes}",
            ReferenceImageError.TOO_LARGE,
        )
    return decode_data_url(value) if value[:5].lower() == "data:" else decode_base64(value)


async def load_source(
    session: aiohttp.ClientSession, source: ImageSource, options: ReferenceOptions, pool: CpuPool
) -> bytes:
    """The raw bytes of one source, within the size cap (and time limit for downloads)."""
    try:
        if source.kind == "url":
            return await fetch_bytes(
                session, source.value, max_bytes=options.max_bytes, timeout=options.timeout
            )
        if source.kind == "file":
            return await asyncio.to_thread(_read_file, source.value, options.max_bytes)
        return await pool.run(_decode_inline, source.value, options.max_bytes)
    except DownloadError as exc:
        reason = _DOWNLOAD_REASONS.get(exc.reason, ReferenceImageError.DOWNLOAD)
        raise ReferenceImageError(exc.detail, reason) from exc
    except InvalidImageError as exc:
        raise ReferenceImageError(exc.detail, ReferenceImageError.INVALID) from exc
    except OSError as exc:
        raise ReferenceImageError(
            f"cannot read file: {type(exc).__name__}", ReferenceImageError.SOURCE
        ) from exc


def _encode_alpha(image: PILImage.Image) -> tuple[bytes, str]:
    out = io.BytesIO()
    if features.check("webp"):
        image.save(out, "WEBP", quality=WEBP_QUALITY, method=4)
        return out.getvalue(), "image/webp"
    image.save(out, "PNG", optimize=False)
    return out.getvalue(), "image/png"


def _has_alpha_channel(image: PILImage.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def prepare_image(data: bytes, options: ReferenceOptions) -> PreparedImage:
    """Decode, orient, shrink to max_side and re-encode one image. Blocking: run in a thread.

    JPEG when every pixel is opaque (smallest for photos); WebP (PNG without WebP support) when
    transparency is really used. Re-encoding also drops metadata such as GPS positions.
    """
    try:
        return _prepare(data, options)
    except ReferenceImageError:
        raise
    except Exception as exc:  # Pillow raises many types for corrupt or unknown data
        raise ReferenceImageError(
            f"not a usable image: {type(exc).__name__}: {exc}", ReferenceImageError.INVALID
        ) from exc


def _first_frame(data: bytes, options: ReferenceOptions) -> tuple[PILImage.Image, int, bool]:
    """The first frame as RGB, L or RGBA; its EXIF orientation; whether it has alpha."""
    with PILImage.open(io.BytesIO(data), formats=INPUT_FORMATS) as img:
        width, height = img.size
        if width < 1 or height < 1 or width * height > options.max_pixels:
            # Checked from the header, before any pixel is decoded (decompression bombs).
            raise ReferenceImageError(
                f"image of {width}x{height} pixels exceeds the limit", ReferenceImageError.INVALID
            )
        orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
        scale = options.max_side / max(width, height)
        if img.format in ("JPEG", "MPO") and scale <= 0.5:
            # Let libjpeg decode at 1/2, 1/4 or 1/8 size: far less work and memory.
            img.draft("RGB", (int(width * scale) + 1, int(height * scale) + 1))
        img.load()  # the first frame of an animation; raises on truncated data
        alpha = _has_alpha_channel(img)
        frame = img.convert("RGBA" if alpha else "L" if img.mode in ("1", "L") else "RGB")
    return frame, orientation, alpha


def _prepare(data: bytes, options: ReferenceOptions) -> PreparedImage:
    frame, orientation, alpha = _first_frame(data, options)
    frame.thumbnail((options.max_side, options.max_side), PILImage.Resampling.LANCZOS)
    if orientation in _ORIENTATION_FIX:
        frame = frame.transpose(_ORIENTATION_FIX[orientation])
    if alpha and frame.getchannel("A").getextrema()[0] == 255:
        frame, alpha = frame.convert("RGB"), False  # an alpha channel nobody uses
    if alpha:
        encoded, mime = _encode_alpha(frame)
    else:
        out = io.BytesIO()
        frame.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
        encoded, mime = out.getvalue(), "image/jpeg"
    data_url = f"data:{mime};base64,{encode_base64(encoded)}"
    return PreparedImage(mime, data_url, frame.width, frame.height, len(data), len(encoded))


def delivered_data_url(path: Path, max_bytes: int) -> str:
    """One of our delivered pictures, exactly as it went out, as a data URL (the picture of
    a continued edit's history). Raises ReferenceImageError when it is bigger than
    `max_bytes`, gone, or no longer a valid picture. Blocking."""
    data = load_file(str(path), max_bytes)
    try:
        info = inspect_image(data)
    except InvalidImageError as exc:
        raise ReferenceImageError(exc.detail, ReferenceImageError.INVALID) from exc
    return f"data:{_MIME_TYPES[info.format]};base64,{encode_base64(data)}"


def load_file(path: str, max_bytes: int) -> bytes:
    """_read_file with the OSError of a file that is gone as a ReferenceImageError."""
    try:
        return _read_file(path, max_bytes)
    except OSError as exc:
        raise ReferenceImageError(
            f"cannot read file: {type(exc).__name__}", ReferenceImageError.SOURCE
        ) from exc


async def _prepare_one(
    session: aiohttp.ClientSession,
    candidate: Image | Avatar,
    position: int,
    options: ReferenceOptions,
    pool: CpuPool,
) -> PreparedImage | ReferenceImageError:
    avatar = candidate if isinstance(candidate, Avatar) else None
    image = avatar.image if avatar else candidate
    source = source_of(image)
    where = source.describe() if source else "no usable file/url"
    if avatar:
        where = f"avatar of {avatar.user_id}, {where}"
    try:
        if source is None:
            raise ReferenceImageError(
                "image component has no usable source", ReferenceImageError.SOURCE
            )
        data = await load_source(session, source, options, pool)
        prepared = await pool.run(prepare_image, data, options)
    except ReferenceImageError as exc:
        logger.warning(f"reference image {position} ({where}) skipped: {exc.detail}")
        return ReferenceImageError(
            exc.detail,
            exc.reason,
            position=position,
            avatar_of=(avatar.name or avatar.user_id) if avatar else "",
            own_avatar=bool(avatar and avatar.own),
        )
    logger.debug(
        f"reference image {position} ({where}): {prepared.source_bytes} bytes -> "
        f"{prepared.width}x{prepared.height} {prepared.mime}, {prepared.encoded_bytes} bytes"
    )
    return prepared


async def collect_references(
    session: aiohttp.ClientSession,
    sources: ReferenceSources,
    options: ReferenceOptions,
    pool: CpuPool,
) -> References:
    """Load up to max_images candidates (concurrently): remembered pictures first, then the
    message's, then avatars."""
    candidates: list[Image | Avatar] = [*sources.remembered, *sources.pictures, *sources.avatars]
    problems: list[ReferenceImageError] = list(sources.problems)
    if len(candidates) > options.max_images:
        logger.info(f"{len(candidates)} reference images, using the first {options.max_images}")
        problems.append(
            ReferenceImageError(
                "more reference images than the limit",
                ReferenceImageError.TOO_MANY,
                found=len(candidates),
                limit=options.max_images,
                avatars=len(sources.avatars),
            )
        )
    chosen = candidates[: options.max_images]
    results = await asyncio.gather(
        *(_prepare_one(session, c, i, options, pool) for i, c in enumerate(chosen, start=1))
    )
    images = tuple(r for r in results if isinstance(r, PreparedImage))
    avatars = sum(
        1
        for c, r in zip(chosen, results, strict=True)
        if isinstance(c, Avatar) and isinstance(r, PreparedImage)
    )
    remembered = sum(1 for r in results[: len(sources.remembered)] if isinstance(r, PreparedImage))
    problems.extend(r for r in results if isinstance(r, ReferenceImageError))
    return References(images, tuple(problems), len(candidates), avatars, remembered)


async def references_for_request(
    session: aiohttp.ClientSession,
    sources: ReferenceSources,
    use_images: bool,
    options: ReferenceOptions,
    pool: CpuPool,
) -> References:
    """The reference images one request sends (none found is fine: the text is drawn).

    `use_images` false leaves the message's pictures out (remembered pictures and avatars are
    in `sources` only when wanted). Raises ReferenceImageError when candidates came and not
    one of them could be read.
    """
    if not use_images and sources.pictures:
        left_out = len(sources.pictures)
        logger.info(f"use_reference_images is false: {left_out} image(s) not sent")
        if not (sources.avatars or sources.remembered):
            return References(problems=sources.problems, found=left_out)
        sources = ReferenceSources(
            (), sources.avatars, sources.problems, remembered=sources.remembered
        )
    if not sources:
        return References(problems=sources.problems)
    references = await collect_references(session, sources, options, pool)
    if not references.images:
        raise ReferenceImageError(
            f"none of {references.found} reference image(s) could be read",
            ReferenceImageError.UNUSABLE,
            found=references.found,
        )
    return references
