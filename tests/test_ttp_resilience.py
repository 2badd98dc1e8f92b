"""Resilience of the tool inside a real AstrBot against every upstream fault of the fake server.

Most tests run on a virtual clock: the plugin's retry policy gets a recording FakeClock, so
backoffs and cooldowns are asserted exactly and cost no real time. A few tests run on the real
clock on purpose: hung upstreams (aiohttp's timeouts are real), one real-time backoff, and the
concurrency test.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from astrbot.core import astrbot_config

from tests.fakes.openrouter import (
    FakeOpenRouter,
    RecordedRequest,
    Reply,
    completion,
    error_body,
    png_prompt,
)
from tests.fakes.openrouter_images import SEEDREAM
from tests.support.harness import make_event
from tests.support.keys import REAL_LOOKING_KEYS, assert_no_key_leaked, sequence, use_keys
from tests.support.virtual_time import tuned_policy

MODERATION_REASONS = ["violence", "self-harm"]


def sent_image_prompt(file_uri: str) -> str | None:
    """The prompt the fake server wrote into the image the plugin sent."""
    return png_prompt(Path("/" + file_uri.removeprefix("file:///").lstrip("/")).read_bytes())


# --- the fault matrix ---------------------------------------------------------------------------


def _malformed() -> Reply:
    return Reply(raw_body=b'{"id": "gen-1", "choices": [{"message": ')


def _error_in_200() -> Reply:
    return Reply(status=200, json_body=error_body(502, "Provider returned error"))


FAULTS: dict[str, Callable[[], Reply]] = {
    "429": lambda: Reply.error(429, "Rate limit exceeded"),
    "429 Retry-After 3": lambda: Reply.error(
        429, "Rate limit exceeded", headers={"Retry-After": "3"}
    ),
    "429 Retry-After 120": lambda: Reply.error(
        429, "Rate limit exceeded", headers={"Retry-After": "120"}
    ),
    "402": lambda: Reply.error(402, "Insufficient credits"),
    "401": lambda: Reply.error(401, "No auth credentials found"),
    "403 moderation": lambda: Reply.error(
        403,
        "Input was flagged",
        metadata={"reasons": MODERATION_REASONS, "flagged_input": "..."},
    ),
    "404 model": lambda: Reply.error(404, "No endpoints found for this model"),
    "400": lambda: Reply.error(400, "Invalid request"),
    "408": lambda: Reply.error(408, "Timed out upstream"),
    "500": lambda: Reply.error(500, "Internal error"),
    "502 HTML": lambda: Reply.html(502),
    "503 Retry-After 7": lambda: Reply.error(503, "No provider", headers={"Retry-After": "7"}),
    "503 Retry-After 300": lambda: Reply.error(503, "No provider", headers={"Retry-After": "300"}),
    "dropped connection": lambda: Reply(action="drop"),
    "truncated body": lambda: Reply(
        json_body=completion(images=["data:image/png;base64," + "A" * 4000]), action="truncate"
    ),
    "malformed JSON": _malformed,
    "200 with error": _error_in_200,
}


@dataclass(frozen=True)
class Case:
    fault: str
    keys: int
    # "always": every request answered with the fault; "once": the first one, then success;
    # "key A": only requests with key A get the fault.
    mode: str
    requests: str  # keys of the requests the server sees, in order
    sleeps: tuple[float, ...]  # waits on the virtual clock, in order
    outcome: str  # "ok" or a fragment of the Chinese answer
    also: tuple[str, ...] = field(default_factory=tuple)  # more fragments that must be there

    @property
    def id(self) -> str:
        return f"{self.keys}key-{self.fault}-{self.mode}".replace(" ", "_")


TRANSIENT_3 = (2, 4, 8, 10, 10, 10, 10, 10)
MATRIX = [
    # one key
    Case("429", 1, "always", "A", (), "限流冷却中", ("约 60 秒后", "API 密钥正在")),
    Case("429 Retry-After 3", 1, "once", "AA", (3,), "ok"),
    Case("429 Retry-After 3", 1, "always", "AAA", (3, 3), "约 3 秒后再试"),
    Case("429 Retry-After 120", 1, "always", "A", (), "约 120 秒后"),
    Case("402", 1, "always", "A", (), "额度已用完"),
    Case("401", 1, "always", "A", (), "密钥无效"),
    Case("403 moderation", 1, "always", "A", (), "内容审核", ("violence", "self-harm")),
    Case("404 model", 1, "always", "A", (), "不存在或已下线", ("google/gemini-2.5-flash-image",)),
    Case("400", 1, "always", "A", (), "拒绝了这次请求"),
    Case("408", 1, "always", "AAA", (2, 4), "响应超时"),
    Case("500", 1, "always", "AAA", (2, 4), "暂时不可用（HTTP 500）"),
    Case("500", 1, "once", "AA", (2,), "ok"),
    Case("502 HTML", 1, "always", "AAA", (2, 4), "暂时不可用（HTTP 502）"),
    Case("503 Retry-After 7", 1, "always", "AAA", (7, 7), "暂时不可用（HTTP 503）"),
    Case(
        "503 Retry-After 300", 1, "always", "A", (), "要求约 300 秒后再试", ("HTTP 503", "100 秒")
    ),
    Case("dropped connection", 1, "always", "AAA", (2, 4), "连不上图像服务"),
    Case("dropped connection", 1, "once", "AA", (2,), "ok"),
    # A stream cut midway may be billed in full: never sent again.
    Case("truncated body", 1, "once", "A", (), "可能已经计费", ("没有自动重试",)),
    # An answer (a 200 with a generation id) that does not parse may be billed as well.
    Case("malformed JSON", 1, "once", "A", (), "可能已经计费"),
    Case("malformed JSON", 1, "always", "A", (), "可能已经计费"),
    Case("200 with error", 1, "once", "AA", (2,), "ok"),
    Case("200 with error", 1, "always", "AAA", (2, 4), "暂时不可用（HTTP 502）"),
    # three keys
    Case("429", 3, "always", "ABC", (), "全部 3 个 API 密钥都在限流冷却中", ("约 60 秒后",)),
    Case("429", 3, "key A", "AB", (), "ok"),
    Case("429 Retry-After 3", 3, "once", "AB", (), "ok"),
    Case("402", 3, "always", "ABC", (), "额度已用完"),
    Case("402", 3, "key A", "AB", (), "ok"),
    Case("401", 3, "always", "ABC", (), "密钥无效"),
    Case("401", 3, "key A", "AB", (), "ok"),
    Case("403 moderation", 3, "always", "A", (), "内容审核", ("violence",)),
    Case("404 model", 3, "always", "A", (), "不存在或已下线"),
    Case("400", 3, "always", "A", (), "拒绝了这次请求"),
    Case("408", 3, "always", "AAABBBCCC", TRANSIENT_3, "响应超时"),
    Case("500", 3, "always", "AAABBBCCC", TRANSIENT_3, "暂时不可用（HTTP 500）"),
    Case("502 HTML", 3, "always", "AAABBBCCC", TRANSIENT_3, "暂时不可用（HTTP 502）"),
    Case("502 HTML", 3, "once", "AA", (2,), "ok"),
    Case("503 Retry-After 7", 3, "always", "AAABBBCCC", (7,) * 8, "暂时不可用（HTTP 503）"),
    # The path failed, not the key: the other keys would meet the same fault.
    Case("dropped connection", 3, "always", "AAA", (2, 4), "连不上图像服务"),
    Case("dropped connection", 3, "once", "AA", (2,), "ok"),
    Case("truncated body", 3, "once", "A", (), "可能已经计费"),
    Case("truncated body", 3, "always", "A", (), "可能已经计费"),
    Case("malformed JSON", 3, "once", "A", (), "可能已经计费"),
    Case("200 with error", 3, "once", "AA", (2,), "ok"),
]


def script(fake: FakeOpenRouter, case: Case) -> None:
    make = FAULTS[case.fault]
    if case.mode == "always":
        fake.default = lambda _request: make()
    elif case.mode == "once":
        fake.enqueue(make())
    elif case.mode == "key A":
        bad = REAL_LOOKING_KEYS[0]
        fake.default = lambda r: make() if r.key == bad else FakeOpenRouter.success_for(r)
    else:  # pragma: no cover - a typo in the table
        raise AssertionError(case.mode)


@pytest.mark.parametrize("case", MATRIX, ids=lambda c: c.id)
async def test_fault_matrix(astrbot, fake, plugin_config, virtual_time, caplog, case: Case):
    plugin_config["request_timeout_budget_seconds"] = 100  # the matrix's timings assume it
    use_keys(plugin_config, case.keys)
    script(fake, case)
    event = make_event("画一只猫")

    texts = await virtual_time.run_tool(event, image_description="a cat in the rain")

    assert sequence(fake) == case.requests
    assert tuple(virtual_time.sleeps) == case.sleeps
    assert len(fake.chat_requests()) <= case.keys * plugin_config["max_retry_attempts"]
    answer = texts[0]
    if case.outcome == "ok":
        assert "已生成 1 张图片" in answer
        assert len(event.sent_images()) == 1
    else:
        assert case.outcome in answer, answer
        for fragment in case.also:
            assert fragment in answer, answer
        assert event.sent == []
        assert "<html" not in answer.lower() and "Traceback" not in answer
    assert_no_key_leaked(answer, event.sent_text(), caplog.text)
    assert not list((astrbot.plugin_dir / "images").glob(".*.part"))


# The Image API's answers go through the same key pool, retry policy and causes: the rows of the
# matrix about statuses, with the same expectations, for a model only the Image API serves.
IMAGE_API_FAULTS = (
    "401",
    "402",
    "429",
    "429 Retry-After 3",
    "500",
    "502 HTML",
    "503 Retry-After 7",
)
IMAGE_API_MATRIX = [c for c in MATRIX if c.fault in IMAGE_API_FAULTS]


@pytest.mark.parametrize("case", IMAGE_API_MATRIX, ids=lambda c: c.id)
async def test_fault_matrix_on_the_image_api(
    astrbot, fake, plugin_config, virtual_time, caplog, case: Case
):
    plugin_config.update(request_timeout_budget_seconds=100, model_name=SEEDREAM)
    use_keys(plugin_config, case.keys)
    script(fake, case)
    event = make_event("画一只猫")

    texts = await virtual_time.run_tool(event, image_description="a cat in the rain")

    assert fake.chat_requests() == []
    assert sequence(fake) == case.requests
    assert tuple(virtual_time.sleeps) == case.sleeps
    answer = texts[0]
    if case.outcome == "ok":
        assert "已生成 1 张图片" in answer and len(event.sent_images()) == 1
    else:
        assert case.outcome in answer, answer
        assert all(fragment in answer for fragment in case.also), answer
        assert event.sent == []
    assert_no_key_leaked(answer, event.sent_text(), caplog.text)


# --- the deadline -----------------------------------------------------------------------------------


async def test_deadline_stops_before_a_backoff_that_does_not_fit(
    astrbot, fake, plugin_config, virtual_time, caplog
):
    use_keys(plugin_config, 3)
    plugin_config["request_timeout_budget_seconds"] = 20
    fake.default = lambda _r: Reply.error(500, "Internal error")

    texts = await virtual_time.run_tool(make_event(), image_description="a cat")

    # Key A's three tries, then B once: 2 + 4 + 8 = 14 s waited; the next 10 s wait plus
    # time for one more try no longer fit in the 20 s budget.
    assert sequence(fake) == "AAAB"
    assert virtual_time.sleeps == [2, 4, 8]
    assert texts[0].startswith("图片生成超时：20 秒内没有拿到结果")
    assert "HTTP 500" in texts[0] and "剩余时间不够再试一次" in texts[0]
    assert "DeadlineExceededError" in caplog.text and "last error" in caplog.text


async def test_a_waiting_period_longer_than_the_budget_is_reported_not_waited(
    astrbot, fake, plugin_config, virtual_time
):
    """A key back in 8 s is worth waiting for, but not when only 10 s are left in total."""
    plugin_config["request_timeout_budget_seconds"] = 10
    fake.default = lambda _r: Reply.error(429, "slow down", headers={"Retry-After": "8"})

    texts = await virtual_time.run_tool(make_event(), image_description="a cat")

    assert sequence(fake) == "A"
    assert virtual_time.sleeps == []
    assert "约 8 秒后" in texts[0]


async def test_hung_upstream_ends_within_a_small_budget(astrbot, fake, plugin_config, caplog):
    """Real clock: a hung server, a 1 s budget; the tool answers with the timeout message."""
    plugin_config["request_timeout_budget_seconds"] = 1
    fake.default = lambda _r: Reply(action="hang")
    started = time.monotonic()

    texts = await astrbot.run_tool(make_event(), image_description="a cat", timeout=30)

    took = time.monotonic() - started
    assert sequence(fake) == "A"
    assert texts[0].startswith("图片生成超时：1 秒内没有拿到结果")
    assert "响应超时" in texts[0]
    assert took < 1 + 3  # the budget holds (generous slack for a loaded machine)
    assert_no_key_leaked(texts[0], caplog.text)


async def test_a_hung_upstream_is_never_sent_the_request_twice(astrbot, fake, plugin_config):
    """Real clock: no answer at all, not even headers. The request may still be running (a
    gateway that does not stream answers only when the picture is done, and bills it in
    full), so it is waited for until the budget ends instead of being sent again; the idle
    limit only applies once an answer has started."""
    plugin_config.update(
        max_retry_attempts=3, read_timeout_seconds=1, request_timeout_budget_seconds=1.5
    )
    fake.default = lambda _r: Reply(action="hang")
    policy = tuned_policy(astrbot, base_delay=0.05, max_delay=0.2, min_attempt_seconds=0.5)

    async with astrbot.instance(retry_policy=policy) as plugin:
        texts = await astrbot.run_tool(
            make_event(), image_description="a cat", timeout=30, plugin=plugin
        )

    assert sequence(fake) == "A"
    assert texts[0].startswith("图片生成超时：2 秒内没有拿到结果")  # 1.5 s, rounded up
    assert "响应超时" in texts[0]


async def test_a_refused_connection_is_tried_on_one_key_not_key_after_key(
    astrbot, fake, plugin_config, virtual_time, caplog
):
    """Nothing listens at the API address: every key would meet the same refusal. Three tries
    on the first key (2 s and 4 s apart), then one sentence; the other keys are not tried."""
    use_keys(plugin_config, 3)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    plugin_config["custom_api_base"] = f"http://127.0.0.1:{port}/api"

    texts = await virtual_time.run_tool(make_event(), image_description="a cat")

    assert virtual_time.sleeps == [2.0, 4.0]
    assert texts[0].startswith("连不上图像服务（连接被拒绝或中断），请稍后再试")
    assert caplog.text.count("with key sk-or-…a1a1 failed: UnreachableError") == 3
    assert "try 3/9 with key sk-or-…a1a1" in caplog.text
    assert "with key sk-or-…b2b2" not in caplog.text and "try 4/9" not in caplog.text
    assert_no_key_leaked(texts[0], caplog.text)


async def test_backoff_in_real_time_with_small_delays(astrbot, fake, plugin_config):
    fake.enqueue(Reply.error(500, "Internal error"), Reply.html(502))
    event = make_event()
    policy = tuned_policy(
        astrbot, base_delay=0.05, max_delay=0.2, jitter=0.0, min_attempt_seconds=0.1
    )

    async with astrbot.instance(retry_policy=policy) as plugin:
        texts = await astrbot.run_tool(event, image_description="a cat", plugin=plugin)

    assert "已生成 1 张图片" in texts[0]
    first, second, third = fake.chat_requests()
    assert second.at - first.at >= 0.05
    assert third.at - second.at >= 0.1
    assert sequence(fake) == "AAA"


# --- keys never leak ----------------------------------------------------------------------------------


async def test_a_key_echoed_by_the_server_is_masked_everywhere(
    astrbot, fake, plugin_config, caplog
):
    use_keys(plugin_config, 2)
    echo = {REAL_LOOKING_KEYS[0]: "A", REAL_LOOKING_KEYS[1]: "B"}
    fake.default = lambda r: Reply.error(401, f"Invalid key {r.key} for user {echo[r.key]}")

    texts = await astrbot.run_tool(make_event(), image_description="a cat")

    assert sequence(fake) == "AB"
    assert "密钥无效" in texts[0]
    assert "sk-or-…" in caplog.text  # the masked form is what the log shows
    assert_no_key_leaked(texts[0], caplog.text)


# --- the pool across requests ------------------------------------------------------------------------


async def test_an_invalid_key_is_not_tried_again_until_the_key_list_changes(
    astrbot, fake, plugin_config, virtual_time
):
    use_keys(plugin_config, 2)
    bad = REAL_LOOKING_KEYS[0]
    fake.default = lambda r: Reply.error(401, "bad key") if r.key == bad else fake.success_for(r)

    for _ in range(3):
        await virtual_time.run_tool(make_event(), image_description="a cat")
    assert sequence(fake) == "ABBB"

    plugin_config["openrouter_api_keys"] = [bad, REAL_LOOKING_KEYS[2]]  # the admin edits the list
    fake.requests.clear()
    await virtual_time.run_tool(make_event(), image_description="a cat")
    assert sequence(fake) == "AC"  # a new pool: the key gets a new chance


async def test_a_rate_limited_key_gets_one_probe_after_its_cooldown(
    astrbot, fake, plugin_config, virtual_time
):
    use_keys(plugin_config, 2)
    bad = REAL_LOOKING_KEYS[0]
    fake.default = lambda r: Reply.error(429, "slow") if r.key == bad else fake.success_for(r)

    await virtual_time.run_tool(make_event(), image_description="one")  # A 429 -> B
    for _ in range(3):
        await virtual_time.run_tool(make_event(), image_description="during cooldown")
    assert sequence(fake) == "ABBBB"

    virtual_time.advance(61)  # the default 60 s cooldown is over
    await virtual_time.run_tool(make_event(), image_description="after cooldown")
    assert sequence(fake) == "ABBBBAB"  # one probe on A, still limited, then B


# --- true causes with mixed keys -------------------------------------------------------------


def _mixed(fake: FakeOpenRouter, second: Callable[[], Reply]) -> None:
    """Key A is invalid; key B answers with `second`."""
    bad = REAL_LOOKING_KEYS[0]
    fake.default = lambda r: Reply.error(401, "User not found") if r.key == bad else second()


async def test_an_invalid_key_and_a_briefly_rate_limited_one_tell_the_rate_limit(
    astrbot, fake, plugin_config, virtual_time, plugin_log
):
    """The user can act on "come back in 3 s"; "the key is invalid" is only half the story
    while another key is merely cooling down. The log lists both keys' states."""
    use_keys(plugin_config, 2)
    _mixed(fake, lambda: Reply.error(429, "Rate limit exceeded", headers={"Retry-After": "3"}))

    texts = await virtual_time.run_tool(make_event(), image_description="a cat")

    assert sequence(fake) == "ABBB"  # B: its three tries, waiting out each short cooldown
    assert virtual_time.sleeps == [3.0, 3.0]
    assert texts == ["请求太频繁，已被限流，请约 3 秒后再试。"]
    states = [r.getMessage() for r in plugin_log if "keys:" in r.getMessage()]
    assert len(states) == 1
    assert "sk-or-…a1a1 invalid (401)" in states[0]
    assert "sk-or-…b2b2 rate limited (429), free in 3 s" in states[0]
    assert_no_key_leaked(*(r.getMessage() for r in plugin_log))


async def test_an_invalid_key_and_a_long_rate_limit_say_when_and_how_many(
    astrbot, fake, plugin_config, virtual_time
):
    use_keys(plugin_config, 2)
    _mixed(fake, lambda: Reply.error(429, "slow down", headers={"Retry-After": "120"}))
    until = time.strftime("%H:%M:%S", time.localtime(virtual_time.wall() + 120))
    expected = [
        "请求太频繁，1 个 API 密钥正在限流冷却中（另有 1 个密钥无效或额度用尽），"
        f"请在 {until}（约 120 秒后）再试。"
    ]

    assert await virtual_time.run_tool(make_event(), image_description="a cat") == expected
    assert sequence(fake) == "AB"
    # The next request knows both keys already: nothing is sent, the answer is the same.
    assert await virtual_time.run_tool(make_event(), image_description="a cat") == expected
    assert sequence(fake) == "AB"


async def test_an_invalid_key_and_a_failing_service_tell_the_service_failure(
    astrbot, fake, plugin_config, virtual_time
):
    use_keys(plugin_config, 2)
    _mixed(fake, lambda: Reply.error(500, "Internal error"))

    texts = await virtual_time.run_tool(make_event(), image_description="a cat")
    assert sequence(fake) == "ABBB"
    assert texts == ["图像服务暂时不可用（HTTP 500），请稍后再试。"]

    fake.requests.clear()  # A is known invalid now: B alone gets its three tries
    texts = await virtual_time.run_tool(make_event(), image_description="a cat")
    assert sequence(fake) == "BBB"
    assert texts == ["图像服务暂时不可用（HTTP 500），请稍后再试。"]


async def test_a_key_echoed_in_part_by_the_server_is_masked_too(
    astrbot, fake, plugin_config, plugin_log
):
    """A server that echoes a cut-off key (`sk-or-v1-a1a1…`): no known key matches it
    whole, its shape does."""
    fake.default = lambda r: Reply.error(401, f"Invalid key {r.key[:30]}... for this account")
    await astrbot.run_tool(make_event(), image_description="a cat")
    assert_no_key_leaked(*(r.getMessage() for r in plugin_log))


# --- concurrency ----------------------------------------------------------------------------------------


async def test_twenty_concurrent_calls_with_one_rate_limited_key(astrbot, fake, plugin_config):
    """Real clock. Key B answers 429 with Retry-After: 1; two bursts of 20 calls, 1.2 s apart."""
    use_keys(plugin_config, 3)
    bad = REAL_LOOKING_KEYS[1]

    def reply(request: RecordedRequest) -> Reply:
        if request.key == bad:
            return Reply.error(429, "Rate limit exceeded", headers={"Retry-After": "1"})
        return FakeOpenRouter.success_for(request)

    fake.default = reply

    async def burst(tag: str) -> None:
        events = [make_event() for _ in range(20)]
        results = await asyncio.gather(
            *(astrbot.run_tool(e, image_description=f"{tag} cat {i}") for i, e in enumerate(events))
        )
        for i, (event, texts) in enumerate(zip(events, results, strict=True)):
            assert "已生成 1 张图片" in texts[0], texts
            (image,) = event.sent_images()
            assert sent_image_prompt(image.file) == f"{tag} cat {i}"

    await burst("first")
    first_burst = len(fake.chat_requests())
    await asyncio.sleep(1.2)  # B's cooldown window passes
    await burst("second")

    bad_requests = [r for r in fake.chat_requests() if r.key == bad]
    assert 1 <= len(bad_requests) <= 2  # at most one per cooldown window
    for earlier, later in itertools.pairwise(bad_requests):
        assert later.at - earlier.at >= 1.0
    good = [r for r in fake.chat_requests() if r.key != bad]
    assert len(good) == 40
    # Both healthy keys take load; once both are known good they alternate.
    second = [r for r in fake.chat_requests()[first_burst:] if r.key != bad]
    counts = [sum(r.key == k for r in second) for k in (REAL_LOOKING_KEYS[0], REAL_LOOKING_KEYS[2])]
    assert abs(counts[0] - counts[1]) <= 2, counts
    assert all(
        any(r.key == k for r in good[:20]) for k in (REAL_LOOKING_KEYS[0], REAL_LOOKING_KEYS[2])
    )


# --- the admin command, dispatched by AstrBot's own pipeline ----------------------------------------


ADMIN_ID = "astrbot"  # AstrBot's default admins_id


async def test_admin_command_shows_the_pool(astrbot, fake, plugin_config, virtual_time):
    assert ADMIN_ID in astrbot_config["admins_id"]
    use_keys(plugin_config, 3)
    bad = REAL_LOOKING_KEYS[0]
    fake.default = lambda r: Reply.error(429, "slow") if r.key == bad else fake.success_for(r)
    await virtual_time.run_tool(make_event(), image_description="a cat")  # A: 429, B: success

    event = make_event("/gemini_keys", sender_id=ADMIN_ID)
    await virtual_time.plugin.cmd_keys(event)  # the instance on the virtual clock

    until = time.strftime("%H:%M:%S", time.localtime(virtual_time.wall() + 60))
    assert event.sent_text().splitlines() == [
        "OpenRouter 密钥池（3 个密钥，模型 google/gemini-2.5-flash-image）：",
        f"1、sk-or-…a1a1 | 限流冷却中，{until} 恢复 | 成功 0 / 失败 1",
        "2、sk-or-…b2b2 | 正常 | 成功 1 / 失败 0",
        "3、sk-or-…c3c3 | 尚未使用 | 成功 0 / 失败 0",
        "（成功/失败为本次启动或修改密钥配置以来的请求次数）",
    ]
    assert_no_key_leaked(event.sent_text())


@pytest.mark.parametrize("command", ["/gemini_keys", "/画图密钥"])
async def test_admin_command_is_refused_to_members(astrbot, fake, plugin_config, command):
    event = make_event(command, sender_id="10001")
    await astrbot.dispatch(event)
    assert (
        event.sent_text() == "/画图密钥 是管理员指令，只有机器人管理员可以使用（你的 ID：10001）。"
    )
    assert "sk-or" not in event.sent_text()


@pytest.mark.parametrize("command", ["/gemini_keys", "/画图密钥"])
async def test_admin_command_without_keys(astrbot, fake, plugin_config, command):
    plugin_config["openrouter_api_keys"] = ["YOUR_API_KEY"]
    event = make_event(command, sender_id=ADMIN_ID)
    await astrbot.dispatch(event)
    assert event.sent_text() == "OpenRouter 密钥池为空：插件配置中还没有可用的 API 密钥。"
    assert fake.requests == []
