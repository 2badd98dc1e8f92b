"""How a stored image reaches the chat: local file, NapCat host push, or AstrBot's file service.

AstrBot's QQ adapter (aiocqhttp, 4.14 to 4.28) reads an image on the AstrBot host and sends its
bytes inline, so a local path works even when NapCat runs elsewhere. A path on the NapCat host
only helps if NapCat receives that path untouched, so pushed images go out as OneBot segments
through the bot's own API instead of through the adapter's converter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from ..core.errors import DeliveryError
from ..core.settings import Settings
from ..file_send_server import FileTransferError, send_file

LOCAL_NAP_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1", "0.0.0.0"})
QQ_PLATFORM = "aiocqhttp"
# Adapters that send a File component as a file (AstrBot 4.28 source, checked 2026-11).
FILE_PLATFORMS = frozenset(
    {
        "aiocqhttp",
        "dingtalk",
        "discord",
        "kook",
        "lark",
        "line",
        "mattermost",
        "misskey",
        "qq_official",
        "satori",
        "slack",
        "telegram",
        "webchat",
        "wecom",
        "wecom_ai_bot",
        "weixin_oc",
    }
)


def nap_target(settings: Settings) -> str:
    return f"{settings.nap_server_address}:{settings.nap_server_port}"


def should_push(settings: Settings, platform_name: str, event: object) -> bool:
    """Push only for QQ events on a remote NapCat host whose bot API we can call."""
    return (
        platform_name == QQ_PLATFORM
        and settings.nap_server_address.lower() not in LOCAL_NAP_HOSTS
        and getattr(event, "bot", None) is not None
    )


def file_uri(remote_path: str) -> str:
    """A file:// URI for a path on the NapCat host, which may run Windows or Linux."""
    if PureWindowsPath(remote_path).drive:
        return PureWindowsPath(remote_path).as_uri()
    return PurePosixPath(remote_path).as_uri()


async def push_images(paths: Sequence[Path], settings: Settings, time_left: float) -> list[str]:
    """Upload each file to the receiver on the NapCat host; return the paths it reports.
    Each transfer ends within the configured timeout and the `time_left` of the run."""
    try:
        return list(
            await asyncio.gather(
                *(
                    send_file(
                        path,
                        settings.nap_server_address,
                        settings.nap_server_port,
                        token=settings.nap_transfer_token or None,
                        total_timeout=max(1.0, min(settings.nap_transfer_timeout, time_left)),
                    )
                    for path in paths
                )
            )
        )
    except FileTransferError as exc:
        raise DeliveryError(exc.reason, target=nap_target(settings)) from exc


async def send_onebot_images(event: Any, remote_paths: Sequence[str]) -> None:
    """Send images by path through the OneBot API of the event's bot (NapCat reads the files)."""
    await _send_onebot(
        event, [{"type": "image", "data": {"file": file_uri(p)}} for p in remote_paths]
    )


async def send_onebot_file(event: Any, remote_path: str, name: str) -> None:
    """Send one file by path through the bot's OneBot API (a file segment goes out alone)."""
    await _send_onebot(
        event, [{"type": "file", "data": {"file": file_uri(remote_path), "name": name}}]
    )


async def _send_onebot(event: Any, message: list[dict[str, Any]]) -> None:
    group_id = event.get_group_id()
    try:
        if group_id:
            await event.bot.send_group_msg(group_id=int(group_id), message=message)
        else:
            await event.bot.send_private_msg(user_id=int(event.get_sender_id()), message=message)
    except Exception as exc:  # aiocqhttp raises its own types for HTTP/WS/API failures
        raise DeliveryError(f"OneBot send failed: {type(exc).__name__}: {exc}") from exc
