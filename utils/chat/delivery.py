"""How pictures reach a chat: a local file (inline), a push to the NapCat host, or a link of
AstrBot's file service; the originals of re-encoded pictures as files; through the request's
event while its tool call is live, through AstrBot's context once it is detached.

`Delivery.deliver()` either sends the pictures or raises DeliveryError: the pipeline has paid for
them by then, so anything that goes wrong on the way (a re-encode, the file service, a push, a
send) falls back where it can (the original instead of a failed re-encode, inline instead of a
failed push or link) and otherwise ends as one DeliveryError.

AstrBot's QQ adapter (aiocqhttp, 4.14 to 4.29) reads an image on the AstrBot host and sends its
bytes inline, so a local path works even when NapCat runs elsewhere. A path on the NapCat host
only helps if NapCat receives that path untouched, so pushed images go out as OneBot segments
through the bot's own API instead of through the adapter's converter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Protocol

from astrbot.api import logger
from astrbot.api.event import AstrMessageEvent, MessageChain
from astrbot.api.message_components import File, Image
from astrbot.api.star import Context

from ..core.clock import Deadline
from ..core.errors import DeliveryError
from ..core.settings import Settings
from ..core.workers import CpuPool
from ..file_send_server import FileTransferError, send_file
from ..imaging.held import Hold
from ..imaging.outgoing import Outgoing, prepare_one
from ..imaging.store import ImageStore, SavedImage

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


# --- one request's pictures -----------------------------------------------------------------------


class Recipient(Protocol):
    """The chat a request answers (utils/chat/pipeline.DrawRequest is one)."""

    @property
    def event(self) -> AstrMessageEvent: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def deadline(self) -> Deadline: ...

    @property
    def detached(self) -> bool:
        """The tool call has returned: the request talks to the chat through the context."""
        ...

    @property
    def hold(self) -> Hold:
        """The request's files, which the cleanup leaves alone (re-encodes join them)."""
        ...


@dataclass(frozen=True)
class Delivered:
    """What delivery did: the pictures as sent, the originals as files, and the fallbacks it
    took (utils/chat/texts/replies.py words them for the model and the user)."""

    outgoing: tuple[Outgoing, ...] = ()
    originals_sent: bool | None = None  # None: not asked for
    push_fell_back: bool = False  # the NapCat push failed: sent inline instead
    reencode_failed: bool = False  # a re-encode failed: the original went out instead


class Delivery:
    """Sends the pictures of the requests of one plugin instance to their chats."""

    def __init__(self, context: Context, store: ImageStore, cpu: CpuPool) -> None:
        self._context = context
        self._store = store
        self._cpu = cpu

    async def deliver(self, to: Recipient, images: Sequence[SavedImage]) -> Delivered:
        """Send the images (re-encoded where above the limit), then the originals as files
        when asked. Raises DeliveryError when the pictures did not reach the chat."""
        fitted = [await self._fit(image, to) for image in images]
        outgoing = tuple(item for item, _ in fitted)
        mode = await self._send_pictures(to, [item.sent.path for item in outgoing])
        originals = [item.original for item in outgoing if item.reencoded is not None]
        sent: bool | None = None
        if to.settings.send_original_file and originals:
            sent = await self._send_originals(to, originals, mode)
        return Delivered(
            outgoing,
            sent,
            push_fell_back=mode == "inline after push",
            reencode_failed=not all(ok for _, ok in fitted),
        )

    async def send(self, to: Recipient, chain: MessageChain) -> None:
        """To the chat of the request: through its event while the tool call is live, through
        AstrBot's context once the request is detached. Raises DeliveryError."""
        try:
            if not to.detached:
                await to.event.send(chain)
                return
            sent = await self._context.send_message(to.event.unified_msg_origin, chain)
        except Exception as exc:  # adapters raise their own types
            raise DeliveryError(f"sending to the chat failed: {type(exc).__name__}") from exc
        if sent is False:
            raise DeliveryError("no platform for this chat accepts messages sent later")

    async def report(self, to: Recipient, lines: Sequence[str]) -> None:
        """Tell the chat a detached request's end; a failure is only logged."""
        if not lines:
            return
        try:
            await self.send(to, MessageChain().message("\n".join(lines)))
        except DeliveryError as exc:
            logger.warning(f"gemini-pic-gen: result of a detached request not sent: {exc}")

    async def _fit(self, image: SavedImage, to: Recipient) -> tuple[Outgoing, bool]:
        """The picture as it goes out, and whether that is what was meant: the original goes
        when the re-encode fails (a disk error, pixels Pillow cannot decode), since a big
        picture sent beats a paid one not sent."""
        try:
            max_bytes = to.settings.send_image_max_bytes
            item = await prepare_one(image, self._store, max_bytes, self._cpu)
        except Exception as exc:  # OSError, Pillow's own errors, MemoryError
            logger.warning(
                f"gemini-pic-gen: re-encoding {image.path.name} ({image.size} bytes) failed "
                f"({type(exc).__name__}: {exc}); sending the original"
            )
            return Outgoing(image), False
        if item.reencoded is not None:
            to.hold.add([item.reencoded.path])
            logger.info(
                f"gemini-pic-gen: {image.path.name} ({image.size} bytes) sent as "
                f"{item.reencoded.path.name} ({item.reencoded.size} bytes, "
                f"{item.reencoded.width}x{item.reencoded.height})"
            )
        return item, True

    async def _send_pictures(self, to: Recipient, paths: list[Path]) -> str:
        """How they went: "file_service", "pushed", "inline" or "inline after push"."""
        settings, event = to.settings, to.event
        if settings.use_file_service and await self._send_file_service_links(to, paths):
            return "file_service"
        mode = "inline"
        if should_push(settings, event.get_platform_name(), event):
            try:
                remote_paths = await push_images(paths, settings, to.deadline.remaining())
                await send_onebot_images(event, remote_paths)
                logger.info(f"gemini-pic-gen: pushed {len(paths)} image(s) to NapCat host")
                return "pushed"
            except DeliveryError as exc:
                logger.warning(f"NapCat push to {exc.target} failed ({exc.detail}); sending inline")
                mode = "inline after push"
        chain = MessageChain()
        for path in paths:
            chain.file_image(str(path))
        await self.send(to, chain)
        return mode

    async def _send_file_service_links(self, to: Recipient, paths: list[Path]) -> bool:
        """False (nothing sent) when the file service cannot be used: the pictures go inline."""
        if not self._context.get_config().get("callback_api_base"):
            logger.warning("use_file_service is on but callback_api_base is not set; sending files")
            return False
        chain = MessageChain()
        try:
            for path in paths:
                url = await Image.fromFileSystem(str(path)).register_to_file_service()
                chain.chain.append(Image.fromURL(url))
        except Exception as exc:  # AstrBot raises bare Exception here
            logger.warning(
                f"gemini-pic-gen: file service registration failed ({type(exc).__name__}: "
                f"{exc}); sending files"
            )
            return False
        await self.send(to, chain)
        return True

    async def _send_originals(self, to: Recipient, originals: list[SavedImage], mode: str) -> bool:
        """The originals of re-encoded pictures as files, the way the pictures went. Never
        raises: the pictures are out already; False if a file could not be sent."""
        event = to.event
        if mode == "file_service" or event.get_platform_name() not in FILE_PLATFORMS:
            return False  # a link-only setup or a platform without files
        try:
            if mode == "pushed":  # the receiver is up: NapCat reads the files there
                remote_paths = await push_images(
                    [o.path for o in originals], to.settings, to.deadline.remaining()
                )
                for original, remote in zip(originals, remote_paths, strict=True):
                    await send_onebot_file(event, remote, original.path.name)
            else:
                for original in originals:
                    chain = MessageChain([File(name=original.path.name, file=str(original.path))])
                    await self.send(to, chain)
        except Exception as exc:  # DeliveryError, or anything an adapter raises
            logger.warning(f"gemini-pic-gen: original picture not sent as a file: {exc!r}")
            return False
        return True
