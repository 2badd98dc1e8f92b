"""Shared by the benchmark's processes: an in-process AstrBot with the plugin loaded, the fake
OpenRouter in a process of its own, and the answer bodies it serves.

The fake runs in its own process so that its CPU work (and its memory) never counts against the
plugin: a thread would share the GIL with the event loop being measured.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = Path(__file__).resolve().parent
BENCH_KEY = "sk-or-v1-" + "d4" * 32
# Answer bodies the fake process serves, by name; the figure each one belongs to.
SMALL, MEDIUM, LARGE = "small.json", "png1500k.json", "png8m.json"
# A 4K answer: a 4096x4096 photo-like PNG of about 29 MB (39 MB of base64).
HUGE = "png4k.json"

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.astrbot_env import use_temp_root  # noqa: E402


def prompt(
    body: str, delay: float = 0.0, tag: object = "", tail: float = 0.0, plain: bool = False
) -> str:
    """The prompt that makes the fake process answer with `body` after `delay` seconds (and a
    pause of `tail` seconds before the last 64 KB): as an event stream (what OpenRouter does
    for the plugin's stream requests), or with `plain` as one JSON body (a gateway that does
    not stream)."""
    return f"bench body={body} delay={delay:.3f} tail={tail:.3f} tag={tag} plain={int(plain)}"


def prompt_fields(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split() if "=" in part)


def png_of_size(target: int) -> bytes:
    """A PNG that compresses like a generated picture, about `target` bytes big."""
    from tests.support import images

    side = int((target / 3.0) ** 0.5)  # noisy_png: ~3.0 bytes per pixel
    return images.noisy_png((side, side))


def write_bodies(directory: Path) -> dict[str, int]:
    """Write the answer bodies; return the size of the PNG inside each."""
    from tests.fakes.openrouter import completion, data_url, make_png
    from tests.support import images

    directory.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for name, png in (
        (SMALL, make_png("warm-up")),
        (MEDIUM, png_of_size(1_500_000)),
        (LARGE, png_of_size(8_000_000)),
        (HUGE, images.photo_png((4096, 4096), compress_level=6)),
    ):
        body = completion(images=[data_url(png)], content="Here you go.")
        (directory / name).write_bytes(json.dumps(body).encode())
        sizes[name] = len(png)
    return sizes


class FakeProcess:
    """tests/bench/fake_process.py in a child process, serving the bodies of `bodies`."""

    def __init__(self, bodies: Path) -> None:
        self.bodies = bodies
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def __enter__(self) -> FakeProcess:
        self._process = subprocess.Popen(
            [sys.executable, str(BENCH_DIR / "fake_process.py"), str(self.bodies)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.strip().isdigit():
            self._process.kill()
            raise RuntimeError(f"fake OpenRouter did not start: {line!r}")
        self.port = int(line)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)


class BenchAstrBot:
    """A real AstrBot (temporary root) with the plugin loaded and pointed at `base_url`."""

    def __init__(self, prefix: str) -> None:
        self.root = use_temp_root(prefix)
        self.loaded: Any = None
        self.tool: Any = None
        self.base_url = ""

    async def start(self, base_url: str) -> BenchAstrBot:
        from tests.support import harness  # imports AstrBot: only after use_temp_root()

        _quiet_console()
        self.loaded = await harness.load_plugin(self.root)
        self.base_url = base_url
        self.configure(base_url)
        self.tool = self.loaded.tool
        return self

    def configure(self, base_url: str) -> None:
        from tests.support import harness

        # The key pool keeps its state across runs: they all use the same, healthy key.
        self.loaded.plugin.config.update(harness.plain_settings(base_url, BENCH_KEY))

    async def generate(self, text: str, sender: str = "10001") -> Path:
        """One tool call through AstrBot's tool executor; the path of the image it sent."""
        from tests.support import harness

        event = harness.make_event("画一张图", sender_id=sender)
        return await self.generate_for(event, text)

    async def generate_for(self, event: Any, text: str) -> Path:
        texts = await self.loaded.call_tool(self.tool, event, image_description=text)
        images = event.sent_images()
        if len(images) != 1 or not texts or "已生成 1 张图片" not in texts[0]:
            raise RuntimeError(f"tool call failed: {texts!r}")
        return Path(images[0].path)

    async def stop(self) -> None:
        if self.loaded is not None:
            await self.loaded.plugin.terminate()
        shutil.rmtree(self.root, ignore_errors=True)


def _quiet_console() -> None:
    """Only the table belongs on the console: AstrBot's console sink (loguru, which every
    AstrBot logger feeds) is replaced by one for errors. Records are still made."""
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="ERROR", format="{message}")


def env_for_child() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("ASTRBOT_ROOT", None)
    return env
