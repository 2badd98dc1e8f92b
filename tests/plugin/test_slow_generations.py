"""Issue 12's scenarios through the real plugin and the streaming fake OpenRouter: a drawing is
never refused for its wording, and a paid picture is never lost to a tool timeout, a silent
NapCat receiver or a config save.

Each scenario prints one FIGURES line (when the tool returned, when the picture reached the
chat, how many requests the service saw); run with `-s` to read them. The assertions are about
behaviour: the tool answered before AstrBot's timeout (AstrBot's executor would have raised),
the picture arrived, and exactly one request was made.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from tests.fakes.napcat import FakeNapCat
from tests.fakes.openrouter import FakeOpenRouter, Reply, completion, data_url, make_png
from tests.fakes.openrouter import png_prompt as prompt_of
from tests.support import astrbot_compat
from tests.support.harness import RecordingPlatform, image_path, make_event, make_qq_event

STILL_WORKING = "还在生成中"
REMOTE_NAPCAT = "127.0.0.2"  # loopback, but not "the same host" for the plugin: it pushes


def streamed_picture(delay: float, keepalive: float = 2.0) -> Callable:
    """The fake's answer: a stream open at once, keep-alives while the model works `delay` s,
    then the picture (its PNG names the prompt)."""
    return lambda r: Reply(
        json_body=completion(images=[data_url(make_png(r.prompt))], content="Done."),
        delay=delay,
        keepalive=keepalive,
    )


class Timeline:
    """Seconds since the tool call started, on the event loop's clock."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()

    def now(self) -> float:
        return self._loop.time() - self._start

    async def first_image(self, chat: RecordingPlatform, limit: float) -> tuple[float, bytes]:
        """When the first picture reached `chat` (sent without an event), and its bytes."""
        while not chat.images():
            if self.now() > limit:
                raise AssertionError(f"no picture in the chat after {limit:.0f} s")
            await asyncio.sleep(0.05)
        return self.now(), image_path(chat.images()[0]).read_bytes()


def figures(scenario: str, returned: float, picture: float, requests: int) -> None:
    print(
        f"\nFIGURES {scenario}: tool returned at {returned:.1f} s, picture in the chat at "
        f"{picture:.1f} s, requests seen by the service: {requests}"
    )


# --- AstrBot's tool-call timeout, read from its config -------------------------------------------


async def _outlasting(astrbot, fake: FakeOpenRouter, timeout: int, generation: float, name: str):
    fake.default = streamed_picture(generation)
    event = make_event()
    clock = Timeline()
    # AstrBot's executor, with the same timeout: it raises if the tool has not answered.
    texts = await astrbot.run_tool(event, timeout=timeout, image_description=name)
    returned = clock.now()
    assert STILL_WORKING in texts[0] and "不需要再次调用" in texts[0]
    assert event.sent_images() == []
    arrived, png = await clock.first_image(astrbot.platform, limit=generation + 10)
    assert prompt_of(png) == name
    assert astrbot.platform.sent[0][0] == event.unified_msg_origin
    assert len(fake.chat_requests()) == 1 and fake.aborted_streams == []
    return returned, arrived


async def test_a_generation_outlasting_the_tool_timeout(astrbot, fake, plugin_config, tool_timeout):
    """The timeout comes from AstrBot's config (the key this AstrBot version uses). The tool
    answers by itself before AstrBot would cancel it; the same request goes on and its
    picture reaches the chat afterwards. Scaled: a 20 s tool timeout with a 28 s generation
    becomes 2 s and 2.8 s (the tool answers 1 s early: AstrBot's margin is at least 1 s)."""
    tool_timeout(2)
    returned, arrived = await _outlasting(astrbot, fake, 2, 2.8, "a cat that takes 2.8 s")
    assert returned < arrived
    figures("2 s tool timeout, 2.8 s generation", returned, arrived, 1)


@pytest.mark.parametrize("key", ["agent_runner", "provider_settings"])
async def test_the_tool_timeout_under_either_config_key(
    astrbot, fake, plugin_config, tool_timeout, key
):
    """Scaled: 2 s tool timeout, 2.5 s generation, under each key (the old one as a 4.14-4.27
    config has it, the new one of 4.28+)."""
    if key == "agent_runner" and not astrbot_compat.keeps_tool_timeout_in_agent_runner():
        pytest.skip("this AstrBot has no agent_runner config")
    tool_timeout(2, key)
    returned, arrived = await _outlasting(astrbot, fake, 2, 2.5, f"a cat under {key}")
    figures(f"2 s tool timeout ({key}), 2.5 s generation", returned, arrived, 1)


# --- a silent NapCat receiver -------------------------------------------------------------------


class SilentReceiver:
    """Accepts the plugin's file transfer, reads it, and never answers."""

    def __init__(self) -> None:
        self.connections = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, REMOTE_NAPCAT, 0)
        return self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while await reader.read(65536):
                pass
        finally:
            writer.close()

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()


@pytest_asyncio.fixture
async def napcat_chat(astrbot) -> AsyncIterator[tuple[FakeNapCat, RecordingPlatform]]:
    """A NapCat bot API for QQ events, and AstrBot's platform for that bot (what a request
    that outlived its tool call sends through)."""
    napcat = FakeNapCat()
    await napcat.start()
    chat = RecordingPlatform("napcat")
    platforms = astrbot.context.platform_manager.platform_insts
    platforms.append(chat)
    yield napcat, chat
    platforms.remove(chat)
    await napcat.stop()


async def test_a_silent_napcat_receiver_inside_a_short_tool_timeout(
    astrbot, fake, plugin_config, tool_timeout, napcat_chat
):
    """The picture is made at once, but the receiver on the NapCat host never answers. The
    push waits only what is left of the run's budget (not its own 30 s); the tool has
    answered the model by then, and the picture goes to the chat directly. Scaled: an 8 s
    tool timeout and a 14 s budget become 2 s and 3.5 s."""
    napcat, chat = napcat_chat
    receiver = SilentReceiver()
    port = await receiver.start()
    tool_timeout(2)
    plugin_config.update(
        nap_server_address=REMOTE_NAPCAT,
        nap_server_port=port,
        nap_transfer_timeout=30,
        request_timeout_budget_seconds=3.5,
    )
    fake.default = streamed_picture(0.0)
    event = make_qq_event(napcat.api_root, "画一只猫")
    clock = Timeline()
    try:
        texts = await astrbot.run_tool(event, timeout=2, image_description="a pushed cat")
        returned = clock.now()
        assert STILL_WORKING in texts[0]
        arrived, png = await clock.first_image(chat, limit=10)
    finally:
        await receiver.stop()
    assert prompt_of(png) == "a pushed cat"
    assert receiver.connections == 1
    assert napcat.images_sent() == []  # no path on the NapCat host: nothing was stored there
    assert "接收端" in chat.text()  # the chat hears why the picture came inline
    assert len(fake.chat_requests()) == 1
    assert arrived < 10  # the push gave up with the budget, not after its own 30 s
    figures("silent NapCat receiver, 2 s tool timeout, 3.5 s budget", returned, arrived, 1)


# --- a config save while a picture is being made ----------------------------------------------


async def test_a_config_save_during_a_generation(astrbot, fake, plugin_config):
    """Saving the config in the panel reloads the plugin (terminate(), a new instance). The
    request in flight keeps its stream and its session, finishes and delivers. Scaled: a
    save 2 s into a 6 s generation becomes 0.5 s into 1.5 s."""
    fake.default = streamed_picture(1.5, keepalive=0.25)
    event = make_event()
    clock = Timeline()
    call = asyncio.ensure_future(astrbot.run_tool(event, image_description="a cat being saved"))
    await asyncio.sleep(0.5)
    assert not call.done()
    await astrbot.reload()  # what the panel's save does
    texts = await call
    returned = clock.now()
    assert "已生成 1 张图片" in texts[0]
    [image] = event.sent_images()
    assert prompt_of(image_path(image).read_bytes()) == "a cat being saved"
    assert len(fake.chat_requests()) == 1 and fake.aborted_streams == []
    figures("config save 0.5 s into a 1.5 s generation", returned, returned, 1)


# --- ordinary prompts: never refused for their wording ----------------------------------------

PROMPTS = [
    "画一张海报：我们的App今天正式上线，蓝色科技风",
    "设计一张VIP会员卡，金色边框，黑色背景",
    "一个人正在电脑前编辑视频，赛博朋克风格",
    "画我的头像：一只戴眼镜的柴犬，卡通风格",
    "把夏天的海边画成油画",
    "修改版的蒙娜丽莎，她在喝奶茶",
    "生成一张改图软件的宣传图",
    "一张照片风格的城市夜景，霓虹灯倒映在雨水里",
    "画一只猫，参考梵高的星空风格",
    "把这个想法画出来：会飞的鲸鱼穿过云层",
    "P一张生日贺卡，上面写着生日快乐",
    "画一个图标：绿色的叶子和闪电",
    "换个风格画一只熊猫：水墨画",
    "一张表情包：熊猫头说我太难了",
    "帮我画张壁纸，16:9，星空和山脉",
    "给这段话配图：春眠不觉晓，处处闻啼鸟",
    "画一张图片编辑器的界面设计稿",
    "古风少女在樱花树下弹琴",
    "a poster announcing that our app is now live",
    "edit-style collage of vintage travel stamps",
    "a person editing a video on a laptop, flat illustration",
    "draw my avatar: a fox wearing a hoodie",
    "a VIP membership card with a gold border",
    "modify nothing, just draw a red bicycle in the rain",
    "an image of a photo editor app icon",
    "a watercolor of the Eiffel Tower at sunrise",
    "reference sheet of a cute robot character, front and side view",
    "change of seasons: one tree, four panels",
    "a meme template with a surprised cat",
    "replace the boring sky with aurora: a snowy cabin at night",
    "turn the idea of coffee into a superhero logo",
    "picture this: a lighthouse made of books",
]


async def test_ordinary_drawing_prompts_without_a_picture_are_all_drawn(
    astrbot, fake, plugin_config
):
    """Wording that sounds like editing (edit, 修改, 换, P, 参考, 头像...) with no picture in
    the message: every one is drawn, whatever the model says about reference images; when it
    asked for them, it is told none was found."""
    assert len(PROMPTS) >= 30
    asks = [True, False, None]
    for n, prompt in enumerate(PROMPTS):
        event = make_event(prompt)
        args = {"image_description": prompt}
        if asks[n % 3] is not None:
            args["use_reference_images"] = asks[n % 3]
        texts = await astrbot.run_tool(event, **args)
        assert "已生成 1 张图片" in texts[0], (prompt, texts)
        [image] = event.sent_images()
        assert prompt_of(image_path(image).read_bytes()) == prompt
        assert ("没有找到图片" in texts[0]) is (asks[n % 3] is True), (prompt, texts)
    assert len(fake.chat_requests()) == len(PROMPTS)
    assert all(r.image_parts == [] for r in fake.chat_requests())
    print(f"\nFIGURES ordinary prompts: {len(PROMPTS)} drawn of {len(PROMPTS)}")
