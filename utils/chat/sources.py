"""Where a chat request's reference pictures come from, before anything is downloaded.

Pictures: the message's own, the quoted message's, and those inside merged-forward messages.
AstrBot's QQ adapter hands a merged-forward message over as a bare `Forward(id)`; its contents
are fetched through the bot's OneBot API (`get_forward_msg`, NapCat's answer: `{"messages":
[message, ...]}`, each message with its `message` segments; go-cqhttp names them `content`).

Avatars follow the pictures: each @-mentioned person's (never the bot's own, never @all), and
the requester's own when they asked for it. Only QQ (aiocqhttp) has them, through the
configured `avatar_url_template`; AstrBot exposes no user avatars on its other platforms, so
there a wanted avatar becomes a note for the user instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from astrbot.api import logger
from astrbot.api.event import AstrMessageEvent
from astrbot.api.message_components import At, BaseMessageComponent, Image, Reply

from ..core.errors import ReferenceImageError
from ..core.settings import Settings
from ..imaging.references import Avatar, ReferenceSources, forward_ids, image_components
from .delivery import QQ_PLATFORM

# At most this many merged-forward messages are fetched per request (each is one API call).
MAX_FORWARDS = 4
# Merged forwards nest; NapCat inlines the inner ones. Deeper levels are not looked into.
_MAX_FORWARD_DEPTH = 3
_ALL = "all"


async def gather_sources(
    event: AstrMessageEvent,
    settings: Settings,
    *,
    use_images: bool,
    use_sender_avatar: bool,
    timeout: float,
) -> ReferenceSources:
    """The candidates of one request: pictures in message order, then avatars."""
    chain = event.get_messages()
    problems: list[ReferenceImageError] = []
    forwards: dict[str, tuple[Image, ...]] = {}
    if use_images:
        forwards, forward_problems = await fetch_forwards(event, forward_ids(chain), timeout)
        problems += forward_problems
    pictures = tuple(image_components(chain, forwards))
    wanted = mentioned_users(chain, event.get_self_id()) if use_images else []
    if use_images and pictures:
        # Replying to a picture in QQ adds an @ of its sender: that is not a request for them.
        wanted = [m for m in wanted if m[0] not in _senders_of_quoted_pictures(chain)]
    if use_sender_avatar:
        wanted.append((str(event.get_sender_id()), _sender_name(event)))
    avatars, avatar_problem = avatars_for(
        event.get_platform_name(), settings.avatar_url_template, wanted, event.get_sender_id()
    )
    if avatar_problem is not None:
        problems.append(avatar_problem)
    return ReferenceSources(pictures, avatars, tuple(problems))


# --- @-mentions and avatars ----------------------------------------------------------------------


def mentioned_users(
    chain: Iterable[BaseMessageComponent] | None, self_id: str
) -> list[tuple[str, str]]:
    """(user id, shown name) of each person @-mentioned in the message, in order, once each;
    the bot itself and @all are left out."""
    found: dict[str, str] = {}
    for component in chain or ():
        if not isinstance(component, At):
            continue
        user_id = str(component.qq).strip()
        if not user_id or user_id == _ALL or user_id == str(self_id):
            continue
        found.setdefault(user_id, str(component.name or "").strip())
    return list(found.items())


def _senders_of_quoted_pictures(chain: Iterable[BaseMessageComponent] | None) -> set[str]:
    return {
        str(c.sender_id)
        for c in chain or ()
        if isinstance(c, Reply) and c.sender_id and image_components(c.chain)
    }


def _sender_name(event: AstrMessageEvent) -> str:
    try:
        return str(event.get_sender_name() or "")
    except Exception:  # some adapters leave the sender's name out
        return ""


def avatar_url(template: str, user_id: str) -> str | None:
    """The avatar link of a QQ number; None when the template or the id cannot give one."""
    # QQ numbers are digits: nothing else may reach the URL.
    if not user_id.isdigit() or "{user_id}" not in template:
        return None
    url = template.replace("{user_id}", quote(user_id, safe=""))
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return url


def avatars_for(
    platform: str,
    template: str,
    wanted: Sequence[tuple[str, str]],
    sender_id: object,
) -> tuple[tuple[Avatar, ...], ReferenceImageError | None]:
    """Avatars of `wanted` (user id, name) on `platform`, or a note on why there are none."""
    if not wanted:
        return (), None
    unique = list(dict(wanted).items())
    if platform != QQ_PLATFORM or not template:
        reason = "avatars switched off" if platform == QQ_PLATFORM else f"no avatars on {platform}"
        logger.info(f"gemini-pic-gen: {len(unique)} avatar(s) wanted, {reason}")
        return (), ReferenceImageError(
            reason, ReferenceImageError.NO_AVATARS, found=len(unique), platform=platform
        )
    avatars = []
    for user_id, name in unique:
        url = avatar_url(template, user_id)
        if url is None:
            logger.warning(f"gemini-pic-gen: no avatar link for user {user_id!r} from the template")
            continue
        own = user_id == str(sender_id)
        avatars.append(Avatar(Image.fromURL(url), user_id, name, own=own))
    if not avatars:
        return (), ReferenceImageError(
            "avatar template gives no usable link",
            ReferenceImageError.NO_AVATARS,
            found=len(unique),
            platform=platform,
        )
    return tuple(avatars), None


# --- merged-forward messages ---------------------------------------------------------------------


async def fetch_forwards(
    event: AstrMessageEvent, ids: Sequence[str], timeout: float
) -> tuple[dict[str, tuple[Image, ...]], list[ReferenceImageError]]:
    """The pictures inside each merged-forward message, by forward id (fetched concurrently)."""
    if not ids:
        return {}, []
    bot = getattr(event, "bot", None)
    if event.get_platform_name() != QQ_PLATFORM or not hasattr(bot, "call_action"):
        logger.info(
            f"gemini-pic-gen: {len(ids)} merged forward(s) on a platform without get_forward_msg"
        )
        return {}, [_forward_problem(f"no forward API on {event.get_platform_name()}")]
    chosen = list(ids[:MAX_FORWARDS])
    if len(ids) > MAX_FORWARDS:
        logger.info(f"gemini-pic-gen: {len(ids)} merged forwards, reading the first {MAX_FORWARDS}")
    routing = {"self_id": int(event.get_self_id())} if str(event.get_self_id()).isdigit() else {}
    results = await asyncio.gather(
        *(_fetch_forward(bot, forward_id, routing, timeout) for forward_id in chosen),
        return_exceptions=True,
    )
    found: dict[str, tuple[Image, ...]] = {}
    problems = []
    for forward_id, result in zip(chosen, results, strict=True):
        if isinstance(result, BaseException):
            # aiocqhttp raises ActionFailed / NetworkError / ApiNotAvailable; all mean "not now".
            logger.warning(
                f"gemini-pic-gen: merged forward {forward_id} not read: {type(result).__name__}: "
                f"{result}"
            )
            problems.append(_forward_problem(f"get_forward_msg failed: {type(result).__name__}"))
            continue
        found[forward_id] = result
        logger.info(f"gemini-pic-gen: merged forward {forward_id}: {len(result)} picture(s)")
    return found, problems


async def _fetch_forward(
    bot: Any, forward_id: str, routing: dict[str, int], timeout: float
) -> tuple[Image, ...]:
    # NapCat reads `message_id` (or `id`); older OneBot servers read `id`: send both.
    answer = await asyncio.wait_for(
        bot.call_action("get_forward_msg", message_id=forward_id, id=forward_id, **routing),
        timeout,
    )
    return tuple(pictures_in_forward(answer))


def pictures_in_forward(answer: object) -> list[Image]:
    """Image components for the picture segments of a `get_forward_msg` answer, in order."""
    if not isinstance(answer, dict):
        return []
    nodes = answer.get("messages") or answer.get("message") or []
    return list(_pictures_in_nodes(nodes, 0))


def _pictures_in_nodes(nodes: object, depth: int) -> Iterator[Image]:
    """`nodes`: forwarded messages (NapCat: `message`; go-cqhttp: `content`) or node segments."""
    if not isinstance(nodes, list) or depth >= _MAX_FORWARD_DEPTH:
        return
    for node in nodes:
        if not isinstance(node, dict):
            continue
        holder = node.get("data") if node.get("type") == "node" else node
        if not isinstance(holder, dict):
            continue
        segments = holder.get("message") or holder.get("content") or []
        yield from _pictures_in_segments(segments, depth)


def _pictures_in_segments(segments: object, depth: int) -> Iterator[Image]:
    if not isinstance(segments, list):
        return
    for segment in segments:
        if not isinstance(segment, dict) or not isinstance(segment.get("data"), dict):
            continue
        kind, data = segment.get("type"), segment["data"]
        if kind == "image":
            image = _image_of(data)
            if image is not None:
                yield image
        elif kind == "forward":  # NapCat inlines a nested forward's messages
            yield from _pictures_in_nodes(data.get("content"), depth + 1)
        elif kind == "node":
            yield from _pictures_in_nodes([segment], depth + 1)


def _image_of(data: dict[str, Any]) -> Image | None:
    """The Image component AstrBot's adapter would build from an image segment."""
    fields = {k: str(data[k]) for k in ("file", "url", "path") if data.get(k)}
    if not fields:
        return None
    return Image(file=fields.pop("file", fields.get("url", "")), **fields)


def _forward_problem(detail: str) -> ReferenceImageError:
    return ReferenceImageError(detail, ReferenceImageError.FORWARD)
