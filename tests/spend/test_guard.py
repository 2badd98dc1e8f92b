"""Daily caps: every cap refuses once reached, with its message; bursts at a count cap."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from tests.fakes.clock import FakeClock
from tests.support.ledger_rows import DAY, NOON, entry
from tests.support.logs import captured_log
from utils.chat.texts.failures import user_message
from utils.chat.texts.language import EN, ZH
from utils.core.charges import Outcome
from utils.core.errors import DailyCapReached, LedgerUnavailableError
from utils.core.settings import Settings, SpendPolicy
from utils.spend.days import next_midnight
from utils.spend.guard import SpendGuard
from utils.spend.ledger import Ledger


@dataclass(frozen=True)
class Who:
    platform: str = "aiocqhttp"
    user_id: str = "10001"
    group_id: str = "20002"
    is_admin: bool = False


MEMBER = Who()
ADMIN = Who(user_id="80001", is_admin=True)
RESET = "12-01 00:00"  # the local midnight after NOON (2026-11-30 12:00)


@pytest.fixture
def guard(ledger: Ledger, noon_clock: FakeClock) -> SpendGuard:
    return SpendGuard(ledger, noon_clock)


async def refused(guard: SpendGuard, who: Who, policy: SpendPolicy) -> DailyCapReached:
    before = guard.in_flight
    with pytest.raises(DailyCapReached) as caught:
        await guard.reserve(who, policy)
    assert guard.in_flight == before  # a refusal holds nothing
    return caught.value


CAPS = [
    # (policy, rows recorded today that reach it, cap, words of the message)
    (
        SpendPolicy(user_daily_limit=2),
        [entry(), entry()],
        DailyCapReached.USER_COUNT,
        "你今天的画图数量已达上限（每人每天最多 2 张）",
    ),
    (
        SpendPolicy(group_daily_limit=3),
        [entry(user="a", pictures=2), entry(user="b")],
        DailyCapReached.GROUP_COUNT,
        "本群今天的画图数量已达上限（每群每天最多 3 张）",
    ),
    (
        SpendPolicy(user_daily_budget_usd=0.08),
        [entry(cost=0.05), entry(cost=0.03)],
        DailyCapReached.USER_BUDGET,
        "你今天的画图花费已达上限（每人每天 0.08 美元）",
    ),
    (
        SpendPolicy(group_daily_budget_usd=0.5),
        [entry(user="a", cost=0.3), entry(user="b", cost=0.2)],
        DailyCapReached.GROUP_BUDGET,
        "本群今天的画图花费已达上限（每群每天 0.50 美元）",
    ),
    (
        SpendPolicy(daily_budget_usd=2.0),
        [entry(user="x", group="other", cost=1.5), entry(user="y", group="", cost=0.5)],
        DailyCapReached.BOT_BUDGET,
        "机器人今天的画图总花费已达上限（每天共 2.00 美元）",
    ),
]


@pytest.mark.parametrize(("policy", "rows", "cap", "words"), CAPS, ids=[c[2] for c in CAPS])
async def test_every_cap_refuses_once_reached_with_its_message(
    guard: SpendGuard, ledger: Ledger, policy, rows, cap, words
):
    for row in rows[:-1]:
        await ledger.record(row)
    (await guard.reserve(MEMBER, policy)).release()  # one short of the cap: allowed
    await ledger.record(rows[-1])

    error = await refused(guard, MEMBER, policy)
    assert error.cap == cap
    assert error.resets_at == next_midnight(NOON)
    text = user_message(ZH, error)
    assert words in text
    assert f"将在 {RESET} 重置" in text


async def test_yesterdays_rows_do_not_count(guard: SpendGuard, ledger: Ledger):
    policy = SpendPolicy(user_daily_limit=1, daily_budget_usd=1.0)
    await ledger.record(entry(NOON - DAY, cost=5.0))
    (await guard.reserve(MEMBER, policy)).release()


async def test_admins_are_exempt_unless_caps_apply_to_them(guard: SpendGuard, ledger: Ledger):
    await ledger.record(entry(user=ADMIN.user_id, cost=3.0))
    policy = SpendPolicy(user_daily_limit=1, daily_budget_usd=1.0)
    (await guard.reserve(ADMIN, policy)).release()
    error = await refused(guard, ADMIN, replace(policy, caps_apply_to_admins=True))
    assert error.cap == DailyCapReached.USER_COUNT


async def test_group_caps_do_not_apply_in_private_chats(guard: SpendGuard, ledger: Ledger):
    private = replace(MEMBER, group_id="")
    policy = SpendPolicy(group_daily_limit=1, group_daily_budget_usd=0.01)
    await ledger.record(entry(group=""))
    (await guard.reserve(private, policy)).release()
    (await guard.reserve(MEMBER, policy)).release()  # a private picture is no group's
    await ledger.record(entry())
    assert (await refused(guard, MEMBER, policy)).cap == DailyCapReached.GROUP_COUNT
    (await guard.reserve(private, policy)).release()


async def test_unknown_cost_counts_pictures_but_never_blocks_by_itself(
    guard: SpendGuard, ledger: Ledger
):
    for _ in range(5):
        await ledger.record(entry(cost=None))
    money = SpendPolicy(
        user_daily_budget_usd=0.01, group_daily_budget_usd=0.01, daily_budget_usd=0.01
    )
    (await guard.reserve(MEMBER, money)).release()
    error = await refused(guard, MEMBER, replace(money, user_daily_limit=5))
    assert error.cap == DailyCapReached.USER_COUNT and error.used == 5


async def test_a_burst_at_a_count_cap_gets_exactly_the_pictures_left(
    guard: SpendGuard, ledger: Ledger
):
    policy = SpendPolicy(user_daily_limit=5)
    await ledger.record(entry())
    await ledger.record(entry())  # 3 left

    async def one() -> str:
        try:
            reservation = await guard.reserve(MEMBER, policy)
        except DailyCapReached:
            return "refused"
        await asyncio.sleep(0)  # the generation
        await reservation.commit(entry())
        return "drawn"

    outcomes = await asyncio.gather(*(one() for _ in range(20)))
    assert outcomes.count("drawn") == 3
    today = await ledger.summary("2026-11-30", "2026-11-30")
    assert today.totals.pictures == 5
    assert guard.in_flight == 0


async def test_in_flight_requests_hold_their_picture_until_released(guard: SpendGuard):
    policy = SpendPolicy(user_daily_limit=2, group_daily_limit=3)
    first = await guard.reserve(MEMBER, policy)
    second = await guard.reserve(MEMBER, policy)
    error = await refused(guard, MEMBER, policy)
    assert error.cap == DailyCapReached.USER_COUNT and error.used == 2
    other = await guard.reserve(replace(MEMBER, user_id="10002"), policy)
    assert (await refused(guard, replace(MEMBER, user_id="10003"), policy)).cap == (
        DailyCapReached.GROUP_COUNT
    )
    first.release()
    first.release()  # idempotent
    third = await guard.reserve(MEMBER, policy)
    for reservation in (second, other, third):
        reservation.release()
    assert guard.in_flight == 0


async def test_an_admins_picture_counts_for_the_group(guard: SpendGuard):
    policy = SpendPolicy(group_daily_limit=1)
    held = await guard.reserve(ADMIN, policy)
    assert (await refused(guard, MEMBER, policy)).cap == DailyCapReached.GROUP_COUNT
    held.release()


# --- an estimate before paying ---------------------------------------------------------------------


async def test_an_estimate_that_would_pass_a_budget_is_refused(guard: SpendGuard, ledger: Ledger):
    policy = SpendPolicy(user_daily_budget_usd=0.10, daily_budget_usd=1.0)
    await ledger.record(entry(cost=0.07))
    (await guard.reserve(MEMBER, policy, 0.03)).release()  # exactly up to the budget: allowed
    error = await refused_with(guard, MEMBER, policy, 0.04)
    assert (error.cap, error.used, error.estimate) == (DailyCapReached.USER_BUDGET, 0.07, 0.04)
    text = user_message(ZH, error)
    assert "这张图预计花费约 0.04 美元" in text and "你今天的画图花费已用 0.07 美元" in text
    assert "每人每天 0.10 美元" in text and f"将在 {RESET} 重置" in text
    english = user_message(EN, error)
    assert "would cost about USD 0.04" in english and "at USD 0.07 already" in english
    (await guard.reserve(MEMBER, policy)).release()  # no estimate: as before, not refused
    (await guard.reserve(MEMBER, SpendPolicy(user_daily_limit=9), 5.0)).release()  # no budget


async def test_estimates_in_flight_count_against_the_budget(guard: SpendGuard, ledger: Ledger):
    policy = SpendPolicy(daily_budget_usd=0.10)
    first = await guard.reserve(MEMBER, policy, 0.06)
    other = replace(MEMBER, user_id="10002", group_id="")
    error = await refused_with(guard, other, policy, 0.06)  # 0.06 held + 0.06 > 0.10
    assert error.cap == DailyCapReached.BOT_BUDGET and error.used == pytest.approx(0.06)
    await first.commit(entry(cost=0.05))  # the real cost replaces the estimate
    (await guard.reserve(other, policy, 0.05)).release()
    assert guard.in_flight == 0


async def test_admins_are_exempt_from_estimates_too(guard: SpendGuard):
    policy = SpendPolicy(daily_budget_usd=0.01)
    (await guard.reserve(ADMIN, policy, 1.0)).release()
    assert (await refused_with(guard, MEMBER, policy, 0.02)).estimate == 0.02


async def refused_with(
    guard: SpendGuard, who: Who, policy: SpendPolicy, estimate: float
) -> DailyCapReached:
    with pytest.raises(DailyCapReached) as caught:
        await guard.reserve(who, policy, estimate)
    return caught.value


async def test_an_unusable_ledger_without_a_money_cap_refuses_nothing_and_says_so(
    tmp_path: Path, noon_clock: FakeClock
):
    closed = Ledger(tmp_path, clock=noon_clock)  # never opened
    guard = SpendGuard(closed, noon_clock)
    with captured_log() as log:
        reservation = await guard.reserve(MEMBER, SpendPolicy(user_daily_limit=1))
        assert await reservation.commit(entry()) is None
    assert "daily picture caps not checked" in log.text and "no spend cap is set" in log.text
    assert "SPEND NOT RECORDED" in log.text
    assert guard.in_flight == 0 and guard.unrecorded == 1


async def test_an_unusable_ledger_with_a_money_cap_refuses_every_time_and_says_so(
    tmp_path: Path, noon_clock: FakeClock
):
    closed = Ledger(tmp_path, clock=noon_clock)
    guard = SpendGuard(closed, noon_clock)
    policy = SpendPolicy(user_daily_limit=5, daily_budget_usd=1.0)
    with captured_log() as log:
        for _ in range(2):
            with pytest.raises(LedgerUnavailableError) as caught:
                await guard.reserve(MEMBER, policy)
    assert log.text.count("REQUEST REFUSED: a daily spend cap is set") == 2
    assert guard.in_flight == 0
    assert user_message(ZH, caught.value) == (
        "设置了每日花费上限，但花费记录暂时无法读写、无法确认是否超出上限，所以这次没有发出请求；"
        "请联系管理员查看日志。"
    )
    assert user_message(EN, caught.value).startswith("A daily spend limit is set, but the spend")
    (await guard.reserve(ADMIN, policy)).release()  # admins are exempt: nothing to check


async def test_a_row_the_ledger_did_not_take_is_written_before_the_next_and_counts(
    ledger: Ledger, noon_clock: FakeClock
):
    guard = SpendGuard(ledger, noon_clock)
    policy = SpendPolicy(user_daily_budget_usd=0.05)
    reservation = await guard.reserve(MEMBER, policy)
    await ledger.close()  # the ledger fails under the commit
    with captured_log() as log:
        assert await reservation.commit(entry(cost=0.06)) is None
        assert guard.unrecorded == 1
        with pytest.raises(LedgerUnavailableError):  # it cannot be written: caps fail closed
            await guard.reserve(MEMBER, policy)
    assert "kept in memory (1 row(s))" in log.text
    await ledger.open()  # the ledger works again
    error = await refused(guard, MEMBER, policy)  # the kept row is written first, and counts
    assert (error.cap, error.used) == (DailyCapReached.USER_BUDGET, 0.06)
    assert guard.unrecorded == 0
    [row] = await ledger.latest(5)
    assert row.cost == 0.06


async def test_an_undelivered_answer_is_marked_even_while_its_row_waits_in_memory(
    ledger: Ledger, noon_clock: FakeClock
):
    """The ledger failed under the commit, then the delivery failed: the row written later
    says undelivered, not picture. So does one written (by the next request) before the mark,
    and one written at once."""
    guard = SpendGuard(ledger, noon_clock)
    policy = SpendPolicy(user_daily_limit=9)
    waiting = await guard.reserve(MEMBER, policy)
    written_later = await guard.reserve(MEMBER, policy)
    await ledger.close()
    assert await waiting.commit(entry(user="waiting")) is None
    assert await written_later.commit(entry(user="later")) is None
    await guard.mark(waiting, Outcome.UNDELIVERED)  # still in memory
    await ledger.open()
    (await guard.reserve(MEMBER, policy)).release()  # writes the kept rows
    assert guard.unrecorded == 0
    await guard.mark(written_later, Outcome.UNDELIVERED)  # in the ledger by now
    at_once = await guard.reserve(MEMBER, policy)
    assert await at_once.commit(entry(user="at once")) is not None
    await guard.mark(at_once, Outcome.UNDELIVERED)
    delivered = await guard.reserve(MEMBER, policy)
    await delivered.commit(entry(user="delivered"))
    outcomes = {r.user_id: r.outcome for r in await ledger.latest(9)}
    assert outcomes == {
        "waiting": Outcome.UNDELIVERED,
        "later": Outcome.UNDELIVERED,
        "at once": Outcome.UNDELIVERED,
        "delivered": Outcome.PICTURE,
    }


async def test_rows_kept_in_memory_are_capped_and_the_oldest_dropped_are_logged(
    ledger: Ledger, noon_clock: FakeClock
):
    guard = SpendGuard(ledger, noon_clock, max_unrecorded=3)
    policy = SpendPolicy(user_daily_limit=9)
    reservations = [await guard.reserve(MEMBER, policy) for _ in range(5)]
    await ledger.close()
    with captured_log() as log:
        for n, reservation in enumerate(reservations):
            assert await reservation.commit(entry(user=f"u{n}", cost=0.01 * n)) is None
    assert guard.unrecorded == 3
    assert log.text.count("SPEND ROW LOST: more than 3 rows wait for the ledger") == 2
    assert "user aiocqhttp:u0" in log.text and "user aiocqhttp:u1" in log.text
    await ledger.open()
    (await guard.reserve(MEMBER, policy)).release()
    assert [r.user_id for r in await ledger.latest(9)] == ["u4", "u3", "u2"]


async def test_a_row_whose_prune_failed_is_written_once(tmp_path: Path, noon_clock: FakeClock):
    """The hourly prune after a write fails (SQLite refuses the DELETE of yesterday's row):
    the row is in the ledger, so it is not kept in memory to be written (and counted) again."""
    ledger = Ledger(tmp_path, retention_days=1, clock=noon_clock)
    await ledger.open()
    other = sqlite3.connect(str(ledger.path))
    other.execute(
        "CREATE TRIGGER no_delete BEFORE DELETE ON generations "
        "BEGIN SELECT RAISE(ABORT, 'the disk said no'); END"
    )
    other.commit()
    other.close()
    guard = SpendGuard(ledger, noon_clock)
    try:
        await ledger.record(entry(NOON - DAY))  # yesterday: the prune would remove it
        reservation = await guard.reserve(MEMBER, SpendPolicy(user_daily_limit=5))
        assert await reservation.commit(entry(NOON + 3600, cost=0.05)) is not None
        assert guard.unrecorded == 0
        (await guard.reserve(MEMBER, SpendPolicy(user_daily_limit=5))).release()
        assert len(await ledger.latest(5)) == 2
    finally:
        await ledger.close()


async def test_a_cancelled_commit_still_writes_its_row_and_drops_its_hold(
    tmp_path: Path, noon_clock: FakeClock
):
    """The request is cancelled while its row waits for another connection's write lock: the
    row is written once the lock is gone, and the hold is dropped then (not before: a request
    meanwhile would see neither)."""
    ledger = Ledger(tmp_path, clock=noon_clock, busy_timeout=5.0)
    await ledger.open()
    guard = SpendGuard(ledger, noon_clock)
    reservation = await guard.reserve(MEMBER, SpendPolicy(user_daily_limit=5))
    other = sqlite3.connect(str(ledger.path), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # holds the write lock
        commit = asyncio.ensure_future(reservation.commit(entry(cost=0.039)))
        await asyncio.sleep(0.2)
        commit.cancel()
        with pytest.raises(asyncio.CancelledError):
            await commit
        assert guard.in_flight == 1  # still writing
        reservation.release()  # the request's own `finally`: no effect while the row is written
        assert guard.in_flight == 1
        other.execute("COMMIT")
        await guard.settle()
    finally:
        other.close()
    assert guard.in_flight == 0
    [row] = await ledger.latest(5)
    assert row.cost == 0.039
    await ledger.close()


def test_settings_read_the_caps_from_the_config():
    settings = Settings.from_config(
        {
            "user_daily_limit": "10",
            "group_daily_limit": 50,
            "user_daily_budget_usd": "0.5",
            "group_daily_budget_usd": 2,
            "daily_budget_usd": 5.5,
            "caps_apply_to_admins": "true",
            "ledger_retention_days": 7,
        }
    )
    assert settings.spend == SpendPolicy(10, 50, 0.5, 2.0, 5.5, True, 7)
    defaults = Settings.from_config({}).spend
    assert defaults == SpendPolicy() and not defaults.any_cap
    assert defaults.ledger_retention_days == 30
    broken = Settings.from_config({"user_daily_limit": -3, "daily_budget_usd": "lots"}).spend
    assert (broken.user_daily_limit, broken.daily_budget_usd) == (0, 0.0)
