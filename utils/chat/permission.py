"""Admin commands: AstrBot's admin permission, with the plugin's own answer for non-admins.

AstrBot (4.14.6 and 4.29.3 alike) checks a handler's PermissionTypeFilter in its waking stage:
when it fails, AstrBot answers "您(ID: …)的权限不足以使用此指令。通过 /sid 获取 ID 并请管理员添加。"
only if `platform_settings.no_permission_reply` is on (the default), logs a line either way, and
stops the event; with the setting off the user hears nothing. `admin_command` registers a
subclass of that filter, so the dashboard still lists the command as an admin one and an admin
can still change its permission there (AstrBot then edits this filter's `permission_type`). While
the permission is "admin" and AstrBot would answer, a non-admin passes, marked, and the handler
answers in the plugin's words (`refused()`); with the setting off AstrBot's silence stands.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from astrbot.api.event import AstrMessageEvent
from astrbot.api.event.filter import PermissionType, PermissionTypeFilter
from astrbot.core.star.register.star_handler import get_handler_or_create
from astrbot.core.star.star_handler import EventType

_NOT_ADMIN = "gemini_pic_gen_not_admin"  # event extra: the sender may not run this command

Handler = TypeVar("Handler", bound=Callable[..., Any])


def replies_to_denials(config: Mapping[str, Any] | None) -> bool:
    """AstrBot's "用户权限不足时是否回复" (platform_settings.no_permission_reply, default on)."""
    platform = (config or {}).get("platform_settings")
    return (
        bool(platform.get("no_permission_reply", True)) if isinstance(platform, Mapping) else True
    )


class AdminCommandFilter(PermissionTypeFilter):  # type: ignore[misc]  # AstrBot is untyped
    """AstrBot's admin permission; a non-admin reaches the handler marked instead of AstrBot's
    reply, unless AstrBot is set to stay silent or the dashboard changed the permission."""

    def __init__(self) -> None:
        super().__init__(PermissionType.ADMIN, raise_error=True)

    def filter(self, event: AstrMessageEvent, cfg: Any) -> bool:
        if super().filter(event, cfg):
            return True
        if self.permission_type != PermissionType.ADMIN or not replies_to_denials(cfg):
            return False  # AstrBot's own handling: its reply (another level) or silence
        event.set_extra(_NOT_ADMIN, True)
        return True


def admin_command(handler: Handler) -> Handler:
    """Put above `@filter.command(...)`: the command is for bot admins (see the module doc)."""
    metadata = get_handler_or_create(handler, EventType.AdapterMessageEvent)
    metadata.event_filters.append(AdminCommandFilter())
    return handler


def refused(event: AstrMessageEvent) -> bool:
    """Whether the sender of this admin command is not an admin (the handler must say so)."""
    return bool(event.get_extra(_NOT_ADMIN, False))
