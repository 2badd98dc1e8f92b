"""Many requests at once: each caller sends its own reference image and gets exactly its own result."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest
from astrbot.core.message.components import Image
from PIL import Image as PILImage

from tests.fakes.openrouter import FakeInThread, Reply, completion, data_url, png_prompt
from tests.support import images as img
from tests.support.harness import make_event
from tests.support.probes import LagProbe

CALLS = 20


def _color(n: int) -> tuple[int, int, int]:
    return (10 + 12 * n, 250 - 12 * n, (70 * n) % 256)


def _reference(n: int) -> bytes:
    """A photo-like JPEG (800x600) whose top-left block carries the caller's colour."""
    size = (800, 600)
    noise = PILImage.effect_noise(size, 40)
    photo = PILImage.merge(
        "RGB", (noise, noise.transpose(PILImage.Transpose.FLIP_LEFT_RIGHT), noise)
    )
    photo.paste(_color(n), (0, 0, 200, 200))
    out = io.BytesIO()
    photo.save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture(scope="module")
def answers() -> dict[str, bytes]:
    """Full answer bodies built in advance, so the fake does no heavy work during the test."""
    # Compresses like a generated picture (~0.7 MB); make bench times the full-size case.
    base = img.noisy_png((512, 512))
    return {
        f"picture number {n}": json.dumps(
            completion(images=[data_url(img.png_with_text(base, "prompt", f"picture number {n}"))])
        ).encode()
        for n in range(CALLS)
    }


async def test_concurrent_calls_each_get_their_own_images(astrbot, plugin_config, answers):
    with FakeInThread() as server:
        await _concurrent_calls(astrbot, plugin_config, answers, server)


async def _concurrent_calls(astrbot, plugin_config, answers, server) -> None:
    plugin_config["custom_api_base"] = server.base_url
    server.default = lambda recorded: Reply(raw_body=answers[recorded.prompt], delay=0.02)
    references = [_reference(n) for n in range(CALLS)]
    prompts = list(answers)
    events = [
        make_event(
            f"参考这张图画第 {n} 张", [Image.fromBase64(img.b64(references[n]))], sender_id=str(n)
        )
        for n in range(CALLS)
    ]

    tool = astrbot.tool
    with LagProbe() as probe:
        results = await asyncio.gather(
            *(
                astrbot.call_tool(tool, e, image_description=p)
                for e, p in zip(events, prompts, strict=True)
            )
        )

    # Each request carried its own caller's reference image...
    requests = server.chat_requests()
    assert len(requests) == CALLS
    for request in requests:
        n = int(request.prompt.rsplit(" ", 1)[1])
        [part] = [img.read_data_url(u) for u in request.image_parts]
        assert part.mime == "image/jpeg"
        assert img.close_to(part.pixel(20, 20), _color(n), tolerance=12)
    # ...and each caller received exactly the picture made for its prompt.
    _assert_each_got_its_own(events, prompts, results)
    print(f"\n{CALLS} concurrent calls: longest event-loop stall {probe.longest * 1000:.1f} ms")


def _assert_each_got_its_own(events, prompts, results) -> None:
    paths = set()
    for event, prompt, texts in zip(events, prompts, results, strict=True):
        [image] = event.sent_images()
        path = Path(image.path)
        assert png_prompt(path.read_bytes()) == prompt
        assert "已生成 1 张图片" in texts[0]
        paths.add(path)
    assert len(paths) == CALLS
