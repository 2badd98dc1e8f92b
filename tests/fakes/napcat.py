"""A fake NapCat OneBot v11 HTTP API on loopback: records every action call.

`get_forward_msg` answers from `forwards` (forward id -> the forwarded messages) the way NapCat
does: `{"messages": [message, ...]}`, each message holding its segments in `message`; an unknown
id fails like NapCat's expired forward (status "failed", retcode 1200)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

# Any 127/8 address is loopback on Linux, but only 127.0.0.1 and localhost count as "same host"
# for the plugin: this address makes it push files like it would to a remote NapCat host.
REMOTE_NAPCAT = "127.0.0.2"


class FakeNapCat(LoopbackServer):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.forwards: dict[str, list[dict[str, Any]]] = {}

    @property
    def api_root(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def images_sent(self) -> list[str]:
        """The `file` of every image segment sent, in order."""
        return [
            segment["data"]["file"]
            for _, params in self.calls
            for segment in params.get("message", [])
            if segment.get("type") == "image"
        ]

    def files_sent(self) -> list[dict[str, Any]]:
        """The `data` of every file segment sent, in order."""
        return [
            segment["data"]
            for _, params in self.calls
            for segment in params.get("message", [])
            if segment.get("type") == "file"
        ]

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/{action}", self._action)

    def actions(self, name: str) -> list[dict[str, Any]]:
        """The parameters of every call of one action, in order."""
        return [params for action, params in self.calls if action == name]

    async def _action(self, request: web.Request) -> web.Response:
        action, params = request.match_info["action"], await request.json()
        self.calls.append((action, params))
        if action == "get_forward_msg":
            return self._forward(params)
        return web.json_response({"status": "ok", "retcode": 0, "data": {"message_id": 1}})

    def _forward(self, params: dict[str, Any]) -> web.Response:
        forward_id = str(params.get("message_id") or params.get("id") or "")
        if forward_id not in self.forwards:
            return web.json_response(
                {
                    "status": "failed",
                    "retcode": 1200,
                    "data": None,
                    "message": "消息已过期或者为内层消息，无法获取转发消息",
                    "wording": "消息已过期或者为内层消息，无法获取转发消息",
                }
            )
        data = {"messages": self.forwards[forward_id]}
        return web.json_response({"status": "ok", "retcode": 0, "data": data})


def forwarded(user_id: int, nickname: str, *segments: dict[str, Any]) -> dict[str, Any]:
    """One message inside a merged forward, as NapCat's get_forward_msg lists it."""
    return {
        "self_id": 99999,
        "user_id": user_id,
        "time": 1767225600,
        "message_id": 7000,
        "message_type": "group",
        "sender": {"user_id": user_id, "nickname": nickname, "card": ""},
        "message": list(segments),
        "message_format": "array",
        "post_type": "message",
    }


def image_segment(url: str, file: str = "A1B2C3.jpg") -> dict[str, Any]:
    return {"type": "image", "data": {"file": file, "url": url, "summary": "", "sub_type": 0}}


def text_segment(text: str) -> dict[str, Any]:
    return {"type": "text", "data": {"text": text}}


def forward_segment(forward_id: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    """A merged forward inside a forwarded message: NapCat inlines its messages."""
    return {"type": "forward", "data": {"id": forward_id, "content": content}}
