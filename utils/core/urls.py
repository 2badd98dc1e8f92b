"""Addresses as admins see them: no credentials, and a word when keys would go out in clear."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit


def display_url(url: str) -> str:
    """`url` without userinfo, query and fragment (they may hold a password or a token)."""
    parts = urlsplit(url)
    if not parts.netloc:
        return url.split("?", 1)[0].split("#", 1)[0]
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: show the address without it
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_cleartext_remote(url: str) -> bool:
    """True for a plain http:// address of another host: the API keys would cross the
    network in clear text (the Authorization header of every request)."""
    parts = urlsplit(url)
    return parts.scheme.lower() == "http" and not is_loopback_host(parts.hostname or "")


def cleartext_log(url: str) -> str:
    """The English log line for is_cleartext_remote(url)."""
    return (
        f"gemini-pic-gen: the API base {display_url(url)} is plain http:// to another host: "
        "every request sends the API keys in clear text; use https://"
    )
