"""Bounded HTTP downloads of images: a size cap and one time limit for the whole transfer."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import aiohttp

from ..core.errors import DownloadError

_CHUNK = 256 * 1024


def is_http_url(value: str) -> bool:
    return value[:8].lower().startswith(("http://", "https://"))


def describe_url(url: str) -> str:
    """Host and path only: query strings often carry signed tokens that do not belong in logs."""
    parts = urlsplit(url)
    path = parts.path if len(parts.path) <= 60 else parts.path[:57] + "..."
    return f"{parts.scheme}://{parts.hostname or '?'}{path}"


async def fetch_bytes(
    session: aiohttp.ClientSession, url: str, *, max_bytes: int, timeout: float
) -> bytes:
    """GET url with the plugin's session; at most max_bytes, all within `timeout` seconds."""
    if not is_http_url(url):
        raise DownloadError(f"not an http(s) URL: {url[:40]!r}", "http")
    where = describe_url(url)
    try:
        async with session.get(
            url, timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=True
        ) as response:
            if response.status != 200:
                raise DownloadError(f"GET {where}: HTTP {response.status}", "http")
            if response.content_length is not None and response.content_length > max_bytes:
                raise DownloadError(
                    f"GET {where}: {response.content_length} bytes announced, cap {max_bytes}",
                    "too_large",
                )
            # Read in chunks so a server that lies about (or omits) its length cannot make us
            # hold more than the cap.
            buffer = bytearray()
            async for chunk in response.content.iter_chunked(_CHUNK):
                buffer += chunk
                if len(buffer) > max_bytes:
                    raise DownloadError(f"GET {where}: more than {max_bytes} bytes", "too_large")
            return bytes(buffer)
    except asyncio.TimeoutError as exc:
        raise DownloadError(f"GET {where}: no complete answer in {timeout:g} s", "timeout") from exc
    except aiohttp.ClientError as exc:
        raise DownloadError(f"GET {where}: {type(exc).__name__}", "network") from exc
