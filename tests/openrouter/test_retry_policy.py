"""The pure parts of resilience: classification, backoff, Retry-After, the run, the deadline."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from email.utils import formatdate

import pytest

from tests.conftest import REAL_LOOKING_KEYS
from tests.fakes.clock import FakeClock
from utils.chat.texts.failures import user_message
from utils.chat.texts.language import ZH
from utils.core.charges import Charge, Outcome
from utils.core.clock import Deadline
from utils.core.errors import (
    AllKeysCoolingDownError,
    BadRequestError,
    ConnectionLostError,
    DeadlineExceededError,
    InvalidImageError,
    InvalidKeyError,
    ModelUnavailableError,
    ModerationError,
    NoAnswerError,
    NoImageError,
    OutOfCreditsError,
    RateLimitedError,
    RefusalError,
    UnreachableError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from utils.core.keys import mask_key
from utils.openrouter.answers import classify_error, classify_error_object
from utils.openrouter.retry_policy import (
    MAX_RETRY_AFTER,
    Action,
    KeyOutcome,
    RetryPolicy,
    backoff_delay,
    classify,
    key_outcome,
    parse_retry_after,
)

NOW = 1_767_225_600.0


def _charged(error: ConnectionLostError) -> ConnectionLostError:
    """A failure of an answer that had started: it may be billed, another try could be too."""
    error.charge = Charge(Outcome.ABORTED, "m", "sk-or-…a1a1", "gen-1")
    return error


# --- classification ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "action", "outcome"),
    [
        (RateLimitedError("429"), Action.SWITCH_KEY, KeyOutcome.RATE_LIMITED),
        (OutOfCreditsError("402", 402), Action.SWITCH_KEY, KeyOutcome.NO_CREDITS),
        (InvalidKeyError("401", 401), Action.SWITCH_KEY, KeyOutcome.INVALID),
        (UpstreamTimeoutError("408", 408), Action.BACKOFF, KeyOutcome.FAILURE),
        (UpstreamUnavailableError("502", 502), Action.BACKOFF, KeyOutcome.FAILURE),
        (UpstreamUnavailableError("dropped"), Action.BACKOFF, KeyOutcome.FAILURE),
        (BadRequestError("400", 400), Action.STOP, KeyOutcome.FAILURE),
        (ModerationError("403", ("violence",)), Action.STOP, KeyOutcome.FAILURE),
        (ModelUnavailableError("404", "m"), Action.STOP, KeyOutcome.FAILURE),
        (RefusalError("refused"), Action.STOP, KeyOutcome.FAILURE),
        (NoImageError("no image"), Action.STOP, KeyOutcome.FAILURE),
        (InvalidImageError("bad png"), Action.STOP, KeyOutcome.FAILURE),
        (AllKeysCoolingDownError("all", 60, NOW, 3), Action.STOP, KeyOutcome.FAILURE),
        (DeadlineExceededError("late", 100), Action.STOP, KeyOutcome.FAILURE),
        (ValueError("our bug"), Action.STOP, KeyOutcome.FAILURE),
        (asyncio.CancelledError(), Action.STOP, KeyOutcome.FAILURE),
        (UnreachableError("refused"), Action.BACKOFF, KeyOutcome.FAILURE),
        (NoAnswerError("no headers", 60), Action.STOP, KeyOutcome.FAILURE),
        (ConnectionLostError("went silent"), Action.BACKOFF, KeyOutcome.FAILURE),
        (_charged(ConnectionLostError("cut midway")), Action.STOP, KeyOutcome.FAILURE),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_classify_and_key_outcome(error, action, outcome):
    assert classify(error) is action
    assert key_outcome(error) is outcome


def test_an_unreachable_service_is_tried_again_on_its_key_never_key_after_key():
    run = RetryPolicy().start_run(3, 3, Deadline.start(100, FakeClock()))
    a = REAL_LOOKING_KEYS[0]
    for tries in range(1, 4):
        run.began(a)
        error = UnreachableError("connection refused")
        run.failed(error)
        assert run.preferred_key() == a
        assert run.may_retry(error) is (tries < 3)  # the path failed: B and C would too
    assert run.total == 3 < run.max_total


def test_success_is_a_key_outcome():
    assert key_outcome(None) is KeyOutcome.SUCCESS


def _body(code: int, message: str = "m", **metadata) -> bytes:
    error: dict = {"code": code, "message": message}
    if metadata:
        error["metadata"] = metadata
    return json.dumps({"error": error}).encode()


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "retry_after"),
    [
        (401, _body(401), {}, InvalidKeyError, None),
        (402, _body(402), {}, OutOfCreditsError, None),
        (429, _body(429), {}, RateLimitedError, None),
        (429, _body(429), {"Retry-After": "17"}, RateLimitedError, 17.0),
        (403, _body(403, reasons=["violence"]), {}, ModerationError, None),
        (404, _body(404), {}, ModelUnavailableError, None),
        (400, _body(400), {}, BadRequestError, None),
        (413, _body(413), {}, BadRequestError, None),
        (408, _body(408), {}, UpstreamTimeoutError, None),
        (500, _body(500), {}, UpstreamUnavailableError, None),
        (502, b"<html><body>Bad Gateway</body></html>", {}, UpstreamUnavailableError, None),
        (403, b"<html>Cloudflare</html>", {}, UpstreamUnavailableError, None),  # a proxy page
        (503, _body(503), {"Retry-After": "7"}, UpstreamUnavailableError, 7.0),
        (200, _body(502), {}, UpstreamUnavailableError, None),  # error after acceptance
        (200, _body(429), {}, RateLimitedError, None),
    ],
)
def test_classify_error(status, body, headers, kind, retry_after):
    error = classify_error(status, body, headers, "google/gemini-2.5-flash-image", NOW)
    assert type(error) is kind
    assert error.retry_after == retry_after
    assert "<html" not in error.detail


def test_a_key_the_server_echoes_is_masked_in_the_detail():
    """The detail is logged and copied into other errors (the deadline's give-up): the
    server's message goes in with our keys, and anything shaped like a key, masked."""
    own, gateway = REAL_LOOKING_KEYS[0], "gw-" + "k7" * 16  # a relay's key: no sk- shape
    stranger = "sk-or-v1-" + "9" * 24
    message = f"key {own} (or {gateway}) rejected; not {stranger} either"
    for error in (
        classify_error(401, _body(401, message), {}, "m", NOW, keys=(own, gateway)),
        classify_error_object(
            200,
            {"code": 502, "message": message},
            {},
            "m",
            NOW,
            where="stream",
            keys=(own, gateway),
        ),
    ):
        for secret in (own, gateway, "9" * 24):
            assert secret not in error.detail
        assert mask_key(own) in error.detail and mask_key(gateway) in error.detail


def test_classify_error_keeps_moderation_reasons_and_the_model():
    error = classify_error(403, _body(403, reasons=["violence", "hate"]), {}, "m", NOW)
    assert isinstance(error, ModerationError) and error.reasons == ("violence", "hate")
    missing = classify_error(404, _body(404), {}, "old/model:free", NOW)
    assert isinstance(missing, ModelUnavailableError) and missing.model == "old/model:free"


# --- Retry-After and backoff ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("5", 5.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("soon", None),
        ("nan", None),
        ("99999999", MAX_RETRY_AFTER),
        (formatdate(NOW + 30, usegmt=True), 30.0),
        (formatdate(NOW - 30, usegmt=True), 0.0),
    ],
)
def test_parse_retry_after(value, expected):
    headers = {} if value is None else {"Retry-After": value}
    assert parse_retry_after(headers, NOW) == expected


def test_backoff_doubles_from_two_seconds_and_caps_at_ten():
    assert [backoff_delay(n, draw=0.0) for n in range(1, 7)] == [2, 4, 8, 10, 10, 10]
    assert backoff_delay(10_000, draw=0.0) == 10  # no overflow for long runs


def test_backoff_jitter_only_shortens_within_twenty_percent():
    for n in range(1, 8):
        full = backoff_delay(n, draw=0.0)
        for draw in (0.0, 0.3, 0.999, 1.0, 5.0, -1.0):
            delay = backoff_delay(n, draw=draw)
            assert full * 0.8 - 1e-9 <= delay <= full <= 10


def test_delay_after_prefers_retry_after_and_does_not_wait_to_switch_keys():
    policy = RetryPolicy(rng=lambda: 0.0)
    run = policy.start_run(1, 3, Deadline.start(100, FakeClock()))
    transient = UpstreamUnavailableError("503", 503, retry_after=7.0)
    run.failed(transient)
    assert policy.delay_after(run, transient) == 7.0
    plain = UpstreamUnavailableError("500", 500)
    run.failed(plain)
    assert policy.delay_after(run, plain) == 4.0  # second transient failure of the run
    assert policy.delay_after(run, RateLimitedError("429", retry_after=30)) == 0.0


# --- the run --------------------------------------------------------------------------------------


def test_run_limits_tries_per_key_and_in_total():
    run = RetryPolicy().start_run(2, 2, Deadline.start(100, FakeClock()))
    a, b = REAL_LOOKING_KEYS[:2]
    for key in (a, a, b):
        run.began(key)
        error = UpstreamUnavailableError("500", 500)
        run.failed(error)
    assert run.exhausted_keys() == {a}
    assert run.may_retry(error)
    run.began(b)
    run.failed(error)
    assert run.total == run.max_total == 4
    assert not run.may_retry(error)


def test_run_retries_only_failures_of_its_own_tries():
    run = RetryPolicy().start_run(3, 3, Deadline.start(100, FakeClock()))
    run.began(REAL_LOOKING_KEYS[0])
    run.failed(RateLimitedError("429"))
    # The pool saying "every key is out of credits" is not a try: it ends the run.
    assert not run.may_retry(OutOfCreditsError("no key left", 402))
    assert not run.may_retry(BadRequestError("400", 400))


def test_run_sticks_to_its_key_only_after_transient_failures():
    run = RetryPolicy().start_run(3, 3, Deadline.start(100, FakeClock()))
    run.began(REAL_LOOKING_KEYS[0])
    run.failed(UpstreamTimeoutError("timeout"))
    assert run.preferred_key() == REAL_LOOKING_KEYS[0]
    run.failed(RateLimitedError("429"))
    assert run.preferred_key() is None


def test_a_run_shows_its_keys_masked():
    """loguru prints the values of local variables in the tracebacks it logs."""
    run = RetryPolicy().start_run(2, 2, Deadline.start(100, FakeClock()))
    a, b = REAL_LOOKING_KEYS[:2]
    run.began(a)
    run.failed(InvalidKeyError("401", 401))
    run.began(b)
    text = repr(run)
    assert a not in text and b not in text
    assert mask_key(a) in text and mask_key(b) in text


async def test_retrying_loop_on_a_virtual_clock():
    """The tenacity loop alone: 2 keys x 2 tries of a failing call, with exact waits."""
    clock = FakeClock()
    policy = RetryPolicy(clock=clock, rng=lambda: 0.0)
    run = policy.start_run(2, 2, Deadline.start(100, clock))
    keys = iter(["k1", "k1", "k2", "k2", "k3"])
    calls: list[str] = []

    with pytest.raises(UpstreamUnavailableError):
        async for attempt in policy.retrying(run):
            with attempt:
                key = next(keys)
                calls.append(key)
                run.began(key)
                error = UpstreamUnavailableError("HTTP 502", 502)
                run.failed(error)
                raise error
    assert calls == ["k1", "k1", "k2", "k2"]
    assert clock.sleeps == [2, 4, 8]


async def test_retrying_loop_gives_up_with_the_reason_when_the_budget_is_short():
    clock = FakeClock()
    policy = RetryPolicy(clock=clock, rng=lambda: 0.0, min_attempt_seconds=5)
    run = policy.start_run(1, 10, Deadline.start(12, clock))
    with pytest.raises(DeadlineExceededError) as caught:
        async for attempt in policy.retrying(run):
            with attempt:
                run.began("k")
                error = UpstreamTimeoutError("read timeout")
                run.failed(error)
                raise error
    assert clock.sleeps == [2, 4]  # 6 s used; 8 s more plus a 5 s try would pass 12 s
    assert caught.value.last_error is run.last_error
    assert caught.value.next_wait == 8
    assert "图片生成超时：12 秒内没有拿到结果" in user_message(ZH, caught.value)


def test_policy_is_a_value_that_tests_can_copy_with_another_clock():
    clock = FakeClock()
    policy = dataclasses.replace(RetryPolicy(), clock=clock)
    assert policy.clock is clock and policy.base_delay == 2 and policy.max_delay == 10


# --- the deadline ---------------------------------------------------------------------------------


def test_deadline_counts_down_on_its_clock():
    clock = FakeClock()
    deadline = Deadline.start(10, clock)
    assert deadline.remaining() == 10 and not deadline.expired()
    clock.advance(4)
    assert deadline.elapsed() == 4 and deadline.remaining() == 6
    assert deadline.fits(1, reserve=5) and not deadline.fits(2, reserve=5)
    clock.advance(7)
    assert deadline.remaining() == 0 and deadline.expired()


async def test_deadline_on_the_real_clock():
    deadline = Deadline.start(5)
    await asyncio.sleep(0.02)
    assert 0 < deadline.remaining() < 5


# --- the Chinese messages of the new errors -------------------------------------------------------------


def test_all_keys_cooling_down_message_says_when():
    retry_at = NOW + 90
    text = user_message(ZH, AllKeysCoolingDownError("d", 89.2, retry_at, 3))
    clock_text = time.strftime("%H:%M:%S", time.localtime(retry_at))
    assert (
        text
        == f"请求太频繁，全部 3 个 API 密钥都在限流冷却中，请在 {clock_text}（约 90 秒后）再试。"
    )
    one = user_message(ZH, AllKeysCoolingDownError("d", 5, retry_at, 1))
    assert one.startswith("请求太频繁，API 密钥正在限流冷却中") and "约 5 秒后" in one


def test_deadline_messages():
    plain = DeadlineExceededError("d", 100, UpstreamUnavailableError("HTTP 502", 502), 10)
    assert user_message(ZH, plain) == (
        "图片生成超时：100 秒内没有拿到结果，最后一次失败原因：图像服务暂时不可用（HTTP 502）。"
        "剩余时间不够再试一次，请稍后再试。"
    )
    asked = UpstreamUnavailableError("HTTP 503", 503, retry_after=300)
    assert user_message(ZH, DeadlineExceededError("d", 100, asked, 300)) == (
        "图像服务暂时不可用（HTTP 503），服务要求约 300 秒后再试，超出了本次 100 秒的时间上限，"
        "请稍后再试。"
    )
    assert "最后一次" not in user_message(ZH, DeadlineExceededError("waiting for a key", 100))
