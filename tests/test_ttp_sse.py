"""The streamed answer (`"stream": true`) through the real tool: slow is not dead, silence is.

OpenRouter keeps a stream alive with comment lines while the model works, so the plugin waits
as long as they come (within the run's budget) and calls a stream dead only when even they
stop. A request is never sent a second time while the first may still be running, nor after an
answer that started and was cut: providers that cannot abort (Google's) bill that one in full.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.fakes.clock import FakeClock
from tests.fakes.openrouter import Reply, completion, data_url, error_body, make_png
from tests.fakes.openrouter_stream import DONE_EVENT, StreamFault, chunks_of, event, render
from tests.support import images as img
from tests.support.harness import make_event
from tests.support.keys import sequence, use_keys
from tests.support.ledger_rows import fresh_id, rows_of
from tests.support.virtual_time import tuned_policy
from utils.core.clock import Deadline
from utils.imaging.store import is_own_temp_name
from utils.ttp import GenerationRequest

# An answer that had started and was cut: it may be billed, so it is not tried again.
LOST = "图片传到一半连接断开了，没有收到图片；这次生成可能已经计费，为免重复扣费没有自动重试，请稍后再试。"
# Big enough that its event goes out in many network writes (32 KB each).
BIG = img.png_with_text(img.noisy_png((300, 300)), "prompt", "streamed")


def picture(png: bytes = BIG, **kw) -> Reply:
    return Reply(json_body=completion(images=[data_url(png)], content="Here."), **kw)


def _sent(event) -> list[bytes]:
    return [Path(i.path).read_bytes() for i in event.sent_images()]


def _temp_files(astrbot) -> list[str]:
    directory = astrbot.plugin_dir / "images"
    return [p.name for p in directory.iterdir() if is_own_temp_name(p.name)]


BROKEN_BILLED = "图像服务的回答不完整或无法读取，没有得到图片；这次生成可能已经计费，为免重复扣费没有自动重试，请稍后再试。"


async def test_every_request_asks_for_a_stream_and_gets_its_picture(astrbot, fake, plugin_config):
    fake.enqueue(picture())
    event = make_event()
    texts = await astrbot.run_tool(event, image_description="a streamed cat")

    [request] = fake.chat_requests()
    assert request.streamed
    assert _sent(event) == [BIG]
    assert "已生成 1 张图片" in texts[0] and "模型附言：Here." in texts[0]
    assert _temp_files(astrbot) == []


async def test_a_generation_longer_than_the_idle_limit_is_one_request_and_arrives(
    astrbot, fake, plugin_config, tool_timeout
):
    """A 4K picture takes 30-90 s, longer than the idle limit (60 s by default): the
    keep-alives carry the stream through. Scaled (75 s under a 60 s idle limit, a 120 s tool
    timeout and a 150 s budget): 1.5 s under 1 s, a 6 s tool timeout (the tool answers by 4 s),
    a 7 s budget, so the tool still waits for the picture."""
    tool_timeout(6)
    plugin_config.update(request_timeout_budget_seconds=7, read_timeout_seconds=1)
    fake.enqueue(picture(delay=1.5, keepalive=0.25))
    event = make_event()
    loop = asyncio.get_running_loop()
    started = loop.time()
    texts = await astrbot.run_tool(event, timeout=6, image_description="a slow 4K cat")
    returned = loop.time() - started

    assert len(fake.chat_requests()) == 1
    assert _sent(event) == [BIG]
    assert "已生成 1 张图片" in texts[0]
    assert returned >= 1.5  # the tool waited for the picture; it did not detach
    print(
        f"\nFIGURES 1.5 s generation, 1 s idle limit, 6 s tool timeout, 7 s budget: tool "
        f"returned with the picture at {returned:.1f} s, requests seen by the service: 1"
    )


@pytest.mark.parametrize(
    ("keepalive", "delivered"),
    [(0.25, True), (100.0, False)],
    ids=["keep-alives-every-0.25s", "no-keep-alive"],
)
async def test_keep_alives_are_what_keeps_a_slow_stream_alive(
    astrbot, fake, plugin_config, keepalive, delivered
):
    """Scaled: a 1.5 s generation, an idle limit of 1 s. With keep-alives it arrives; without
    them the same stream is taken for dead after 1 s."""
    plugin_config.update(read_timeout_seconds=1, max_retry_attempts=1)
    fake.enqueue(picture(delay=1.5, keepalive=keepalive))
    event = make_event()
    texts = await astrbot.run_tool(event, timeout=30, image_description="a slow cat")

    assert len(fake.chat_requests()) == 1
    if delivered:
        assert _sent(event) == [BIG]
    else:
        assert texts == [LOST] and event.sent == []


async def test_a_stream_that_goes_silent_is_a_dead_connection_and_is_not_tried_again(
    astrbot, fake, plugin_config, virtual_time
):
    """The stream opens, then nothing: not even a keep-alive. It is closed (which stops it
    upstream only where the provider supports that) and not sent again: a second try could be
    billed as well. The user hears that it may have been billed."""
    plugin_config.update(read_timeout_seconds=1, max_retry_attempts=2)
    fake.default = lambda _r: Reply(json_body=completion(images=[]), action="silent")
    event = make_event()
    texts = await virtual_time.run_tool(event, timeout=30, image_description="a cat")

    assert sequence(fake) == "A"
    assert virtual_time.sleeps == []
    assert texts == [LOST]
    assert event.sent == []
    for _ in range(100):  # the client closed the silent stream
        if fake.aborted_streams:
            break
        await asyncio.sleep(0.05)
    assert fake.aborted_streams == fake.chat_requests()


# --- errors inside the stream ---------------------------------------------------------------

STATUSES = {
    "401": (401, "No auth credentials found", None),
    "402": (402, "Insufficient credits", None),
    "403": (403, "Input was flagged", {"reasons": ["violence"], "flagged_input": "..."}),
    "429": (429, "Rate limit exceeded", None),
    "502": (502, "Provider returned error", None),
    "503": (503, "No provider available", None),
}


@pytest.mark.parametrize("status", sorted(STATUSES))
async def test_an_error_chunk_is_classified_like_its_status(astrbot, fake, plugin_config, status):
    """The same failure, once before the stream (an HTTP status), once inside it (a chunk with
    an `error` object and finish_reason "error"): same tries, same waits, same answer."""
    use_keys(plugin_config, 2)
    code, message, metadata = STATUSES[status]
    outcomes = []
    for streamed in (False, True):
        fake.reset()
        if streamed:
            body = error_body(code, message, metadata)
            fake.default = lambda _r, b=body: Reply(status=200, json_body=b)
        else:
            fake.default = lambda _r: Reply.error(code, message, metadata=metadata)
        clock = FakeClock()  # each variant on a fresh instance: a fresh key pool
        policy = tuned_policy(astrbot, clock=clock, rng=lambda: 0.0)
        async with astrbot.instance(clock=clock, retry_policy=policy) as plugin:
            texts = await astrbot.run_tool(make_event(), image_description="a cat", plugin=plugin)
        outcomes.append((sequence(fake), clock.sleeps, texts))
    assert outcomes[0] == outcomes[1]
    assert all(r.streamed for r in fake.chat_requests())


async def test_an_error_chunk_after_content_and_a_word_for_a_code(
    astrbot, fake, plugin_config, virtual_time
):
    """A mid-stream error whose code is a word ("server_error"), after some text: a
    transient failure, tried again; the next answer is good."""
    head = chunks_of(completion(images=[], content="Drawing"))[:2]
    failed = chunks_of(error_body(500, "Provider disconnected"))[1]
    failed["error"]["code"] = "server_error"
    stream = b"".join(event(c) for c in [*head, failed])
    fake.enqueue(Reply(raw_body=stream, content_type="text/event-stream"), picture())
    event_ = make_event()
    texts = await virtual_time.run_tool(event_, image_description="a cat")

    assert sequence(fake) == "AA" and virtual_time.sleeps == [2.0]
    assert _sent(event_) == [BIG] and "已生成 1 张图片" in texts[0]


@pytest.mark.parametrize(
    "garbage", [b"{not json", b'["a list"]'], ids=["not-json", "not-an-object"]
)
async def test_a_stream_that_turns_to_garbage_is_billed_not_sent_again(
    astrbot, fake, plugin_config, virtual_time, garbage
):
    """Some text, then an event that is no chunk: the answer had started and may be billed
    (the model worked), so it is not sent again, and its ledger row (aborted, with the
    generation id the stream named) is written. Only an `error` object is the service ending
    the request itself (the test above)."""
    head = chunks_of(completion(images=[], content="Drawing"))[:2]
    stream = b"".join(event(c) for c in head) + event(garbage.decode()) + DONE_EVENT
    fake.default = lambda _r: Reply(raw_body=stream, content_type="text/event-stream")
    user = fresh_id("garbled")
    texts = await virtual_time.run_tool(make_event(sender_id=user), image_description="a cat")

    assert sequence(fake) == "A" and virtual_time.sleeps == []
    assert texts == [BROKEN_BILLED]
    [row] = await rows_of(virtual_time.plugin, user)
    assert (row.outcome, row.pictures, row.generation_id) == ("aborted", 0, head[0]["id"])


async def test_a_stream_that_ends_before_its_end(astrbot, fake, plugin_config, virtual_time):
    """No finish reason, no [DONE]: cut short, and not tried again (it may be billed). A
    finish reason without [DONE] (some gateways) is a complete answer."""
    plugin_config["max_retry_attempts"] = 2
    whole = chunks_of(completion(images=[data_url(BIG)]))
    without_end = b"".join(event(c) for c in whole[:2])  # role, picture; no finish
    without_done = b"".join(event(c) for c in whole)
    fake.enqueue(
        Reply(raw_body=without_end, content_type="text/event-stream"),
        Reply(raw_body=without_done, content_type="text/event-stream"),
    )
    cut = make_event()
    assert await virtual_time.run_tool(cut, image_description="a cat") == [LOST]
    assert sequence(fake) == "A" and cut.sent == []
    event_ = make_event()
    await virtual_time.run_tool(event_, image_description="a cat")

    assert sequence(fake) == "AA"
    assert _sent(event_) == [BIG]
    assert _temp_files(astrbot) == []


async def test_a_finished_stream_that_neither_ends_nor_closes_is_complete(
    astrbot, fake, plugin_config
):
    """The whole answer, finish reason and usage included, then neither [DONE] nor the end of
    the body: only silence. The answer is complete: the silence ends it, it is no lost
    connection, and the picture is delivered."""
    plugin_config.update(read_timeout_seconds=1, max_retry_attempts=2)
    whole = chunks_of(completion(images=[data_url(BIG)], content="Here."))
    assert "usage" in whole[-1]
    stream = b"".join(event(c) for c in whole)  # no [DONE]
    fake.enqueue(
        Reply(raw_body=stream, content_type="text/event-stream", action=StreamFault.LINGER)
    )
    event_ = make_event()
    texts = await astrbot.run_tool(event_, timeout=30, image_description="a cat")

    assert len(fake.chat_requests()) == 1
    assert _sent(event_) == [BIG] and "已生成 1 张图片" in texts[0]
    assert _temp_files(astrbot) == []


# --- gateways that do not stream ------------------------------------------------------------


async def test_a_gateway_answering_plain_json_to_a_stream_request(astrbot, fake, plugin_config):
    fake.enqueue(picture(stream=False))
    event = make_event()
    await astrbot.run_tool(event, image_description="a cat")

    [request] = fake.chat_requests()
    assert request.streamed
    assert _sent(event) == [BIG]


async def test_a_stream_under_another_content_type_is_read_as_a_stream(
    astrbot, fake, plugin_config
):
    stream = render(completion(images=[data_url(BIG)], content="Here."))
    fake.enqueue(Reply(raw_body=stream, content_type="application/json"))
    event = make_event()
    await astrbot.run_tool(event, image_description="a cat")
    assert _sent(event) == [BIG]


async def test_a_slow_plain_json_gateway_is_waited_for_not_asked_twice(
    astrbot, fake, plugin_config
):
    """It answers only when the picture is done, 1.5 s later: longer than the idle limit (1 s),
    but nothing had started, so only the budget limits the wait."""
    plugin_config.update(read_timeout_seconds=1)
    fake.enqueue(picture(stream=False, delay=1.5))
    event = make_event()
    await astrbot.run_tool(event, timeout=30, image_description="a cat")

    assert len(fake.chat_requests()) == 1
    assert _sent(event) == [BIG]


async def test_a_plain_json_body_that_stalls_is_a_lost_connection(
    astrbot, fake, plugin_config, virtual_time
):
    plugin_config.update(read_timeout_seconds=1, max_retry_attempts=1)
    fake.enqueue(picture(stream=False, action="stall"))
    texts = await virtual_time.run_tool(make_event(), timeout=30, image_description="a cat")
    assert texts == [LOST]
    assert _temp_files(astrbot) == []


# --- bodies that are not pictures are read with a cap ---------------------------------------


async def test_a_huge_error_page_that_never_ends_is_read_only_in_part(
    astrbot, fake, plugin_config, virtual_time
):
    """A proxy's 500 page of 20 MB that stops halfway and never ends: read up to the cap, then
    classified by its status. Reading it whole would wait for the idle limit (60 s) on each of
    the three tries, far past AstrBot's 20 s tool timeout."""
    page = b"<html><body>" + b"x" * 20_000_000 + b"</body></html>"
    fake.default = lambda _r: Reply(
        status=500, raw_body=page, content_type="text/html", action="stall"
    )
    texts = await virtual_time.run_tool(make_event(), timeout=20, image_description="a cat")

    assert sequence(fake) == "AAA"
    assert texts == ["图像服务暂时不可用（HTTP 500），请稍后再试。"]


async def test_a_200_page_that_is_not_an_answer_is_read_only_in_part(
    astrbot, fake, plugin_config, virtual_time
):
    """A 200 whose body is no answer: read up to the cap. Not sent again: after a 200 the
    request may be billed, whatever came back."""
    page = b"<html><body>" + b"x" * 20_000_000 + b"</body></html>"
    fake.default = lambda _r: Reply(raw_body=page, content_type="text/html", action="stall")
    texts = await virtual_time.run_tool(make_event(), timeout=20, image_description="a cat")

    assert sequence(fake) == "A"
    assert texts == [BROKEN_BILLED]


async def test_a_stream_of_endless_text_is_capped(astrbot, fake, plugin_config, virtual_time):
    """100 events of 50 KB of text each: no event is big, their sum is more than the cap."""
    head = chunks_of(completion(images=[]))[0]
    text = {**head, "choices": [{"index": 0, "delta": {"content": "x" * 50_000}}]}
    stream = event(head) + event(text) * 100
    fake.default = lambda _r: Reply(raw_body=stream, content_type="text/event-stream")
    texts = await virtual_time.run_tool(make_event(), image_description="a cat")
    assert sequence(fake) == "A"  # a model writing that much text bills it: not asked again
    assert texts == [BROKEN_BILLED]


# --- what the client hands on ---------------------------------------------------------------


@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "plain-json"])
async def test_the_result_carries_usage_and_the_generation_id(fake, client_for, streamed):
    """The client itself, against the fake: the spend ledger reads `usage` off the result."""
    body = completion(images=[data_url(make_png("usage"))])
    body["usage"]["cost"] = 0.039
    fake.enqueue(Reply(json_body=body, stream=streamed, headers={"X-Generation-Id": "gen-x1"}))
    client = client_for("google/gemini-2.5-flash-image")
    result = await client.generate(GenerationRequest("usage"), Deadline.start(30))
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (10, 1290)
    assert result.usage.cost == 0.039
    assert result.generation_id == "gen-x1"
    assert result.key_mask == "sk-or-…a1a1"


async def test_a_stream_outliving_the_budget_is_closed(astrbot, fake, plugin_config):
    """The run's budget ends during a long generation: the stream is closed at once (which
    stops it upstream, where the provider supports that), nothing is left behind, and the
    request is not sent again."""
    plugin_config.update(request_timeout_budget_seconds=1)
    fake.enqueue(picture(delay=30, keepalive=0.25))
    event = make_event()
    texts = await astrbot.run_tool(event, timeout=30, image_description="too slow")

    assert texts[0].startswith("图片生成超时：1 秒内没有拿到结果")
    for _ in range(100):  # the fake notices at its next keep-alive
        if fake.aborted_streams:
            break
        await asyncio.sleep(0.05)
    assert fake.aborted_streams == fake.chat_requests()
    assert event.sent == [] and _temp_files(astrbot) == []
