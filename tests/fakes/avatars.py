"""A fake avatar host on loopback, answering the way QQ's public avatar link does:
`GET /g?b=qq&nk=<QQ number>&s=640` -> a JPEG. Each user's avatar is a solid colour, so a test
can tell whose avatar reached the image model and in which order."""

from __future__ import annotations

import io

from aiohttp import web
from PIL import Image

from tests.fakes.loopback import LoopbackServer

GREY = (128, 128, 128)


def avatar_jpeg(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 640), color).save(out, "JPEG", quality=90)
    return out.getvalue()


class FakeAvatarHost(LoopbackServer):
    def __init__(self) -> None:
        super().__init__()
        self.colors: dict[str, tuple[int, int, int]] = {}
        self.status: dict[str, int] = {}  # a user whose avatar answers with this HTTP status
        self.requested: list[str] = []  # the QQ numbers asked for, in order

    def reset(self) -> None:
        self.colors.clear()
        self.status.clear()
        self.requested.clear()

    @property
    def template(self) -> str:
        """What `avatar_url_template` holds to use this host (the default's shape)."""
        return f"http://127.0.0.1:{self.port}/g?b=qq&nk={{user_id}}&s=640"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/g", self._avatar)

    async def _avatar(self, request: web.Request) -> web.Response:
        user = request.query.get("nk", "")
        self.requested.append(user)
        if request.query.get("b") != "qq" or request.query.get("s") != "640":
            return web.Response(status=400)
        if user in self.status:
            return web.Response(status=self.status[user], text="no avatar")
        body = avatar_jpeg(self.colors.get(user, GREY))
        return web.Response(body=body, content_type="image/jpeg")
