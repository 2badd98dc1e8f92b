"""The key pool on its own: choice of key, cooldowns, probes, errors, status table."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.conftest import REAL_LOOKING_KEYS
from tests.fakes.clock import FakeClock
from utils.chat.texts.keys import format_pool_status
from utils.chat.texts.language import ZH
from utils.core.clock import Deadline
from utils.core.errors import (
    AllKeysCoolingDownError,
    DeadlineExceededError,
    InvalidKeyError,
    OutOfCreditsError,
    UnknownKeyError,
)
from utils.core.keys import mask_key
from utils.openrouter.key_pool import KeyPool, KeyState, KeyStatus
from utils.openrouter.retry_policy import KeyOutcome
from utils.openrouter.usage import KeyInfo

A, B, C = REAL_LOOKING_KEYS
NAME = {A: "A", B: "B", C: "C"}


def make_pool(count: int = 3) -> tuple[KeyPool, FakeClock, Deadline]:
    clock = FakeClock()
    return KeyPool(REAL_LOOKING_KEYS[:count], clock=clock), clock, Deadline.start(100, clock)


async def use(
    pool: KeyPool,
    deadline: Deadline,
    outcome: KeyOutcome = KeyOutcome.SUCCESS,
    retry_after: float | None = None,
    **acquire_args,
) -> str:
    """Lease a key, report `outcome` for it, and say which key it was."""
    lease = await pool.acquire(deadline, **acquire_args)
    pool.release(lease, outcome, retry_after)
    return NAME[lease.key]


def states(pool: KeyPool) -> list[KeyState]:
    return [row.state for row in pool.snapshot()]


async def test_requests_rotate_over_the_keys_least_recently_used_first():
    pool, _, deadline = make_pool()
    assert [await use(pool, deadline) for _ in range(7)] == list("ABCABCA")
    assert [row.successes for row in pool.snapshot()] == [3, 2, 2]
    assert states(pool) == [KeyState.OK] * 3


async def test_duplicate_keys_are_one_key():
    pool = KeyPool([A, A, B])
    assert pool.keys == (A, B)


async def test_an_untested_key_carries_one_request_a_healthy_key_many():
    pool, _, deadline = make_pool(2)
    first = await pool.acquire(deadline)
    second = await pool.acquire(deadline)
    assert (NAME[first.key], NAME[second.key]) == ("A", "B")
    pool.release(first, KeyOutcome.SUCCESS)
    # A is now known good: it may take several requests at once; B is still on its probe.
    third, fourth = await pool.acquire(deadline), await pool.acquire(deadline)
    assert (NAME[third.key], NAME[fourth.key]) == ("A", "A")
    assert [row.in_flight for row in pool.snapshot()] == [2, 1]


async def test_a_request_waits_for_the_probe_of_an_untested_key():
    pool = KeyPool([A])  # real clock: the waiter must really be woken by the release
    deadline = Deadline.start(5)
    probe = await pool.acquire(deadline)
    waiter = asyncio.create_task(pool.acquire(deadline))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    pool.release(probe, KeyOutcome.SUCCESS)
    lease = await asyncio.wait_for(waiter, 1)
    assert lease.key == A


async def test_the_waiter_learns_when_the_probe_was_rate_limited():
    pool = KeyPool([A])
    deadline = Deadline.start(5)
    probe = await pool.acquire(deadline)
    waiter = asyncio.create_task(pool.acquire(deadline))
    await asyncio.sleep(0.01)
    pool.release(probe, KeyOutcome.RATE_LIMITED, retry_after=None)
    with pytest.raises(AllKeysCoolingDownError) as caught:
        await asyncio.wait_for(waiter, 1)
    assert caught.value.retry_after == pytest.approx(60, abs=1)


async def test_waiting_for_a_free_key_ends_at_the_deadline():
    pool = KeyPool([A])
    probe = await pool.acquire(Deadline.start(5))
    with pytest.raises(DeadlineExceededError):
        await pool.acquire(Deadline.start(0.05))
    pool.release(probe, None)


async def test_rate_limit_cooldown_honours_retry_after_then_allows_one_probe():
    pool, clock, deadline = make_pool(2)
    assert await use(pool, deadline, KeyOutcome.RATE_LIMITED, retry_after=30) == "A"
    row = pool.snapshot()[0]
    assert row.state is KeyState.COOLING_DOWN and row.until == clock.wall() + 30
    assert [await use(pool, deadline) for _ in range(3)] == list("BBB")
    clock.advance(30)
    assert states(pool)[0] is KeyState.UNTESTED
    probe = await pool.acquire(deadline)
    assert NAME[probe.key] == "A"  # least recently used, so it gets its probe at once
    assert NAME[(await pool.acquire(deadline)).key] == "B"  # not a second request on A


async def test_rate_limit_without_retry_after_cools_down_for_a_minute():
    pool, clock, deadline = make_pool(1)
    await use(pool, deadline, KeyOutcome.RATE_LIMITED)
    with pytest.raises(AllKeysCoolingDownError) as caught:
        await pool.acquire(deadline)
    assert caught.value.retry_after == 60
    assert caught.value.retry_at == clock.wall() + 60
    assert caught.value.key_count == 1


async def test_a_short_cooldown_is_waited_for_on_the_clock():
    pool, clock, deadline = make_pool(1)
    await use(pool, deadline, KeyOutcome.RATE_LIMITED, retry_after=3)
    lease = await pool.acquire(deadline, max_wait=10)
    assert lease.key == A and clock.sleeps == [3]


async def test_a_cooldown_is_not_waited_for_past_the_deadline():
    pool, clock, _ = make_pool(1)
    deadline = Deadline.start(6, clock)
    await use(pool, deadline, KeyOutcome.RATE_LIMITED, retry_after=3)
    with pytest.raises(AllKeysCoolingDownError):
        await pool.acquire(deadline, max_wait=10, reserve=5)  # 3 s wait + 5 s try > 6 s
    assert clock.sleeps == []


async def test_every_key_rate_limited_reports_the_first_to_come_back():
    pool, _, deadline = make_pool(3)
    for wait in (50, 20, 90):
        await use(pool, deadline, KeyOutcome.RATE_LIMITED, retry_after=wait)
    with pytest.raises(AllKeysCoolingDownError) as caught:
        await pool.acquire(deadline)
    assert caught.value.retry_after == 20 and caught.value.key_count == 3


async def test_out_of_credits_is_a_long_cooldown_when_nobody_asks_again():
    pool, clock, deadline = make_pool(2)
    await use(pool, deadline, KeyOutcome.NO_CREDITS)
    assert states(pool)[0] is KeyState.OUT_OF_CREDITS
    assert pool.snapshot()[0].until == clock.wall() + 60  # when it may be asked about again
    await use(pool, deadline, KeyOutcome.NO_CREDITS)
    with pytest.raises(OutOfCreditsError) as caught:
        await pool.acquire(deadline)
    assert caught.value.retry_after == 60 and caught.value.retry_at == clock.wall() + 60
    clock.advance(600)
    assert await use(pool, deadline) == "A"  # credits may have been bought meanwhile


class Service:
    """GET /key as the pool sees it: answers in turn (the last one repeats), each call counted;
    `gate` holds the answers back until set."""

    def __init__(self, *answers: KeyInfo | Exception | None) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, key: str, timeout: float) -> KeyInfo | None:
        self.asked.append(NAME[key])
        await self.gate.wait()
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


async def out_of_credits(count: int = 1) -> tuple[KeyPool, FakeClock, Deadline]:
    pool, clock, deadline = make_pool(count)
    for _ in range(count):
        await use(pool, deadline, KeyOutcome.NO_CREDITS)
    return pool, clock, deadline


async def test_a_key_out_of_credits_comes_back_when_the_service_shows_credit():
    pool, clock, deadline = await out_of_credits()
    service = Service(KeyInfo(limit=10, limit_remaining=0), KeyInfo(limit=20, limit_remaining=10))
    with pytest.raises(OutOfCreditsError) as caught:  # just failed: not asked again at once
        await pool.ensure_usable(10, service)
    assert service.asked == [] and caught.value.retry_after == 60

    clock.advance(60)
    with pytest.raises(OutOfCreditsError) as caught:  # asked: still nothing left
        await pool.ensure_usable(10, service)
    assert service.asked == ["A"] and caught.value.retry_after == 60

    clock.advance(30)
    with pytest.raises(OutOfCreditsError) as caught:  # not due yet: not asked
        await pool.ensure_usable(10, service)
    assert service.asked == ["A"] and caught.value.retry_after == 30

    clock.advance(30)
    await pool.ensure_usable(10, service)  # credit was bought: no reload needed
    assert service.asked == ["A", "A"]
    assert states(pool) == [KeyState.UNTESTED]
    assert await use(pool, deadline) == "A"
    assert states(pool) == [KeyState.OK]


async def test_without_a_limit_of_its_own_one_request_finds_out():
    """limit_remaining null: the 402 came from the account's balance, which GET /key does not
    show; one request tells (a 402 costs nothing), as after a cooldown."""
    pool, clock, deadline = await out_of_credits()
    service = Service(KeyInfo(limit=None, limit_remaining=None))
    clock.advance(60)
    await pool.ensure_usable(10, service)
    assert states(pool) == [KeyState.UNTESTED]
    probe = await pool.acquire(deadline)
    pool.release(probe, KeyOutcome.NO_CREDITS)  # still out: blocked again, asked in 60 s
    with pytest.raises(OutOfCreditsError) as caught:
        await pool.ensure_usable(10, service)
    assert caught.value.retry_after == 60 and service.asked == ["A"]


@pytest.mark.parametrize("answer", [None, RuntimeError("boom")], ids=["no answer", "a bug"])
async def test_a_service_that_cannot_tell_leaves_the_cooldown_as_it_was(answer):
    pool, clock, deadline = await out_of_credits()
    service = Service(answer)
    clock.advance(60)
    with pytest.raises(OutOfCreditsError) as caught:
        await pool.ensure_usable(10, service)
    assert service.asked == ["A"] and caught.value.retry_after == 60
    clock.advance(540)
    await pool.ensure_usable(10, service)  # the 600 s cooldown is over: a probe as before
    assert await use(pool, deadline) == "A"


async def test_requests_arriving_together_share_one_question():
    pool, clock, _ = await out_of_credits()
    service = Service(KeyInfo(limit=10, limit_remaining=4))
    service.gate.clear()
    clock.advance(60)
    waiting = [asyncio.ensure_future(pool.ensure_usable(10, service)) for _ in range(5)]
    await asyncio.sleep(0)
    service.gate.set()
    await asyncio.gather(*waiting)
    assert service.asked == ["A"]


async def test_an_admin_reset_during_a_question_does_not_cancel_the_requests_waiting():
    """The reset cancels the question it made pointless (the key is free again); the
    requests waiting for its answer go on with the freed key instead of ending cancelled."""
    pool, clock, deadline = await out_of_credits()
    service = Service(KeyInfo(limit=10, limit_remaining=0))
    service.gate.clear()
    clock.advance(60)
    waiting = [asyncio.ensure_future(pool.ensure_usable(10, service)) for _ in range(3)]
    for _ in range(5):  # the waiters start, the question is asked
        await asyncio.sleep(0)
    assert service.asked == ["A"]
    pool.reset()
    await asyncio.gather(*waiting)  # none raises CancelledError
    assert states(pool) == [KeyState.UNTESTED]
    assert await use(pool, deadline) == "A"


async def test_a_request_cancelled_while_waiting_for_a_question_leaves_it_to_the_others():
    pool, clock, _ = await out_of_credits()
    service = Service(KeyInfo(limit=10, limit_remaining=4))
    service.gate.clear()
    clock.advance(60)
    leaving, staying = (asyncio.ensure_future(pool.ensure_usable(10, service)) for _ in range(2))
    for _ in range(5):
        await asyncio.sleep(0)
    assert service.asked == ["A"]
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    service.gate.set()
    await staying  # the question went on: credit shown, the key is back
    assert service.asked == ["A"] and states(pool) == [KeyState.UNTESTED]


async def test_no_question_while_another_key_can_serve():
    pool, clock, deadline = make_pool(2)
    await use(pool, deadline, KeyOutcome.NO_CREDITS)
    service = Service(KeyInfo(limit=10, limit_remaining=4))
    clock.advance(60)
    await pool.ensure_usable(10, service)
    assert service.asked == []
    assert await use(pool, deadline) == "B"


async def test_an_admin_reset_clears_every_state_or_one_keys():
    pool, _, deadline = make_pool(3)
    await use(pool, deadline, KeyOutcome.INVALID)
    await use(pool, deadline, KeyOutcome.NO_CREDITS)
    await use(pool, deadline, KeyOutcome.RATE_LIMITED, retry_after=300)
    assert states(pool) == [KeyState.INVALID, KeyState.OUT_OF_CREDITS, KeyState.COOLING_DOWN]

    assert pool.reset("sk-or-…" + B[-4:]) == [mask_key(B)]
    assert states(pool) == [KeyState.INVALID, KeyState.UNTESTED, KeyState.COOLING_DOWN]
    assert pool.reset(C[-6:]) == [mask_key(C)]  # more of the tail than the mask shows
    assert pool.reset() == [mask_key(k) for k in (A, B, C)]
    assert states(pool) == [KeyState.UNTESTED] * 3
    assert [row.failures for row in pool.snapshot()] == [1, 1, 1]  # the history stays
    assert sorted([await use(pool, deadline) for _ in range(3)]) == ["A", "B", "C"]


@pytest.mark.parametrize("tail", ["zzzz", "a1", A[-4:] + "x"])
async def test_a_reset_naming_no_single_key_changes_nothing(tail):
    pool, _, deadline = make_pool(2)
    await use(pool, deadline, KeyOutcome.INVALID)
    with pytest.raises(UnknownKeyError) as caught:
        pool.reset(tail)
    assert caught.value.known == (mask_key(A), mask_key(B))
    assert caught.value.matches == ()
    assert states(pool)[0] is KeyState.INVALID


async def test_a_tail_two_keys_share_is_ambiguous():
    first, second = "sk-or-v1-" + "1" * 40 + "same", "sk-or-v1-" + "2" * 40 + "same"
    pool = KeyPool([first, second], clock=FakeClock())
    with pytest.raises(UnknownKeyError) as caught:
        pool.reset("same")
    assert caught.value.matches == (mask_key(first), mask_key(second))
    assert pool.reset("2same") == [mask_key(second)]


async def test_an_invalid_key_stays_out_until_a_new_pool():
    pool, clock, deadline = make_pool(2)
    await use(pool, deadline, KeyOutcome.INVALID)
    clock.advance(10_000)
    assert [await use(pool, deadline) for _ in range(3)] == list("BBB")
    await use(pool, deadline, KeyOutcome.INVALID)
    with pytest.raises(InvalidKeyError):
        await pool.acquire(deadline)
    assert states(pool) == [KeyState.INVALID, KeyState.INVALID]
    fresh = KeyPool(pool.keys, clock=clock)
    assert states(fresh) == [KeyState.UNTESTED, KeyState.UNTESTED]


async def test_exclude_and_prefer():
    pool, _, deadline = make_pool(3)
    assert await use(pool, deadline, exclude={A}) == "B"
    assert await use(pool, deadline, prefer=B) == "B"
    assert await use(pool, deadline) == "A"
    assert await use(pool, deadline, prefer=C, exclude={C}) == "B"


async def test_counters_and_neutral_release():
    pool, _, deadline = make_pool(1)
    await use(pool, deadline, KeyOutcome.SUCCESS)
    await use(pool, deadline, KeyOutcome.FAILURE)
    lease = await pool.acquire(deadline)
    pool.release(lease, None)  # cancelled: counts nothing
    pool.release(lease, KeyOutcome.FAILURE)  # a second release is ignored
    row = pool.snapshot()[0]
    assert (row.successes, row.failures, row.in_flight) == (1, 1, 0)
    assert row.state is KeyState.OK  # a failure that is not the key's fault keeps it healthy


async def test_nothing_prints_a_key():
    pool, _, deadline = make_pool(3)
    lease = await pool.acquire(deadline)
    text = repr(pool) + repr(lease) + repr(pool.snapshot()) + repr(pool._slots)
    text += format_pool_status(ZH, pool.snapshot(), "m")
    for key in REAL_LOOKING_KEYS:
        assert key not in text
    assert "sk-or-…a1a1" in text


def test_status_table_in_chinese():
    until = 1_767_225_600.0 + 75
    rows = [
        KeyStatus("sk-or-…a1a1", KeyState.OK, None, 12, 1, 2, ""),
        KeyStatus("sk-or-…b2b2", KeyState.COOLING_DOWN, until, 3, 5, 0, "rate limited"),
        KeyStatus("sk-or-…c3c3", KeyState.INVALID, None, 0, 1, 0, "invalid"),
        KeyStatus("sk-or-…d4d4", KeyState.OUT_OF_CREDITS, until, 0, 2, 0, "out of credits"),
        KeyStatus("sk-or-…e5e5", KeyState.UNTESTED, None, 0, 0, 0, ""),
    ]
    hhmmss = time.strftime("%H:%M:%S", time.localtime(until))
    assert format_pool_status(ZH, rows, "google/gemini-2.5-flash-image").splitlines() == [
        "OpenRouter 密钥池（5 个密钥，模型 google/gemini-2.5-flash-image）：",
        "1、sk-or-…a1a1 | 正常 | 成功 12 / 失败 1，进行中 2",
        f"2、sk-or-…b2b2 | 限流冷却中，{hhmmss} 恢复 | 成功 3 / 失败 5",
        "3、sk-or-…c3c3 | 无效（401），修改配置后才会再用 | 成功 0 / 失败 1",
        f"4、sk-or-…d4d4 | 额度用尽，{hhmmss} 再试 | 成功 0 / 失败 2",
        "5、sk-or-…e5e5 | 尚未使用 | 成功 0 / 失败 0",
        "（成功/失败为本次启动或修改密钥配置以来的请求次数）",
    ]


async def test_a_key_that_only_failed_is_not_called_unused():
    """Failures that say nothing against a key leave it usable, but never "unused"."""
    pool, clock, deadline = make_pool(2)
    for _ in range(3):
        await use(pool, deadline, KeyOutcome.FAILURE)  # both keys try and fail alike
    lines = format_pool_status(ZH, pool.snapshot(), "m").splitlines()
    assert lines[1:3] == [
        "1、sk-or-…a1a1 | 可用，尚无成功请求（最近一次失败：网络或服务故障，与密钥无关） | 成功 0 / 失败 2",
        "2、sk-or-…b2b2 | 可用，尚无成功请求（最近一次失败：网络或服务故障，与密钥无关） | 成功 0 / 失败 1",
    ]
    assert "尚未使用" not in "".join(lines)

    # A rate-limited key whose cooldown is over is usable again, and says why it failed.
    pool, clock, deadline = make_pool(1)
    await use(pool, deadline, KeyOutcome.RATE_LIMITED, retry_after=5)
    clock.advance(6)
    [row] = format_pool_status(ZH, pool.snapshot()).splitlines()[1:2]
    assert (
        row
        == "1、sk-or-…a1a1 | 可用，尚无成功请求（最近一次失败：被限流，冷却已结束） | 成功 0 / 失败 1"
    )


def test_status_table_without_keys():
    assert "还没有可用的 API 密钥" in format_pool_status(ZH, [])
