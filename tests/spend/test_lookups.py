"""Costs looked up afterwards: bounded tries against the fake's GET /api/v1/generation, on a
virtual clock; cancelled on unload with the row left pending; taken up by the next instance."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from tests.fakes.clock import FakeClock
from tests.fakes.openrouter import FakeOpenRouter, Generation, Reply
from tests.support.keys import REAL_LOOKING_KEYS
from tests.support.ledger_rows import NOON, entry
from utils.core.charges import Outcome
from utils.core.clock import SystemClock
from utils.openrouter.usage import GenerationCost, fetch_generation_cost
from utils.spend.ledger import COST_LOOKED_UP, COST_PENDING, COST_UNKNOWN, Ledger
from utils.spend.lookups import CostLookups

KEY = REAL_LOOKING_KEYS[0]


@pytest_asyncio.fixture
async def ask(fake: FakeOpenRouter) -> AsyncIterator:
    """What the spend service asks: GET /generation on the fake with the key of the mask."""
    async with aiohttp.ClientSession() as session:

        async def ask(generation_id: str, key_mask: str) -> GenerationCost:
            assert key_mask == "sk-or-…a1a1"
            return await fetch_generation_cost(session, fake.base_url, KEY, generation_id)

        yield ask


async def _pending_row(ledger: Ledger, generation_id: str) -> int:
    return await ledger.record(
        entry(cost=None, pictures=0, outcome=Outcome.ABORTED, generation_id=generation_id)
    )


async def _settled(lookups: CostLookups) -> None:
    for _ in range(300):
        if not lookups.running:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("lookups still running")


async def test_a_cost_known_after_two_404s(ledger: Ledger, fake, ask, noon_clock: FakeClock):
    fake.generations["gen-a"] = Generation(0.039, not_found=2)
    row = await _pending_row(ledger, "gen-a")
    lookups = CostLookups(ledger, ask, noon_clock)
    lookups.schedule(row, "gen-a", "sk-or-…a1a1")
    lookups.schedule(row, "gen-a", "sk-or-…a1a1")  # once per row
    await _settled(lookups)
    [found] = await ledger.latest(1)
    assert (found.cost, found.cost_status) == (0.039, COST_LOOKED_UP)
    assert len(fake.generation_lookups("gen-a")) == 3
    assert noon_clock.background_sleeps == [2.0, 4.0, 8.0] and noon_clock.sleeps == []


@pytest.mark.parametrize("refused", [False, True], ids=["never-known", "key-refused"])
async def test_a_cost_that_cannot_be_known_is_marked_unknown(
    ledger: Ledger, fake, ask, noon_clock: FakeClock, refused
):
    """A generation the service never knows (a relay without the endpoint answers 404 too):
    five tries, about a minute. A key the endpoint refuses: asking again cannot help."""
    if refused:
        fake.key_replies[KEY] = Reply.error(401, "No auth credentials found")
    row = await _pending_row(ledger, "gen-b")
    lookups = CostLookups(ledger, ask, noon_clock)
    lookups.schedule(row, "gen-b", "sk-or-…a1a1")
    await _settled(lookups)
    [found] = await ledger.latest(1)
    assert (found.cost, found.cost_status) == (None, COST_UNKNOWN)
    assert len(fake.generation_lookups("gen-b")) == (1 if refused else 5)
    assert noon_clock.background_sleeps == ([2.0] if refused else [2.0, 4.0, 8.0, 15.0, 30.0])


async def test_unload_cancels_lookups_and_the_next_instance_takes_them_up(
    ledger: Ledger, fake, ask, noon_clock: FakeClock
):
    row = await _pending_row(ledger, "gen-c")
    first = CostLookups(ledger, ask, SystemClock(), waits=(30.0,))  # waits in real time
    first.schedule(row, "gen-c", "sk-or-…a1a1")
    await asyncio.sleep(0.05)
    await asyncio.wait_for(first.stop(), 1)  # cancelled at once, and awaited
    assert first.running == 0
    first.schedule(row, "gen-c", "sk-or-…a1a1")  # stopped: nothing new starts
    assert first.running == 0
    [still] = await ledger.latest(1)
    assert still.cost_status == COST_PENDING and fake.generation_lookups("gen-c") == []

    old = await ledger.record(
        entry(NOON - 7 * 3600, cost=None, outcome=Outcome.ABORTED, generation_id="gen-old")
    )
    fake.generations["gen-c"] = Generation(0.134, not_found=0)
    noon_clock.now += 60  # a minute later, the next instance starts
    second = CostLookups(ledger, ask, noon_clock)
    await second.resume()
    await _settled(second)
    rows = {r.generation_id: r for r in await ledger.latest(5)}
    assert (rows["gen-c"].cost, rows["gen-c"].cost_status) == (0.134, COST_LOOKED_UP)
    assert rows["gen-c"].at == NOON
    # Too old to take up (its day may be over, its key gone): unknown, not "being looked up".
    assert (rows["gen-old"].cost, rows["gen-old"].cost_status) == (None, COST_UNKNOWN)
    assert old and fake.generation_lookups("gen-old") == []
