"""Costs looked up afterwards: rows whose answer reported no cost (a stream cut before its last
chunk, a relay that does not say) but named its generation id.

OpenRouter tells what a generation cost through `GET /api/v1/generation?id=…`, a few seconds
after it ended (it answers 404 until then). Each lookup is a background task of the spend side,
off the request path: bounded tries with growing waits on the plugin's clock, then the row gets
its cost (`looked_up`) or is marked `unknown`. Unloading cancels the tasks and waits for them;
rows left `pending` are taken up again by the next instance (`resume()`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from astrbot.api import logger

from ..core.clock import SYSTEM_CLOCK, Clock
from ..core.errors import LedgerError
from ..core.tasks import cancel_and_wait
from ..openrouter.usage import GenerationCost
from .ledger import COST_LOOKED_UP, COST_UNKNOWN, Ledger

# Waits before each try (seconds): about a minute in all, which covers OpenRouter's settling
# with room to spare; a relay without the endpoint answers 404 to each and ends as unknown.
LOOKUP_WAITS = (2.0, 4.0, 8.0, 15.0, 30.0)
# Pending rows younger than this (seconds) are taken up again at start; older ones (their key
# may be gone, their day over) are marked unknown rather than left "being looked up".
RESUME_WITHIN = 6 * 3600.0

# What each lookup's task is called (a virtual clock in tests tells its waits from a request's).
TASK_NAME = "gemini-pic-gen cost lookup"
# (generation id, masked key) -> what the service says; the spend service provides it.
AskCost = Callable[[str, str], Awaitable[GenerationCost]]


class CostLookups:
    """The lookups of one plugin instance."""

    def __init__(
        self,
        ledger: Ledger,
        ask: AskCost,
        clock: Clock = SYSTEM_CLOCK,
        waits: tuple[float, ...] = LOOKUP_WAITS,
    ) -> None:
        self._ledger = ledger
        self._ask = ask
        self._clock = clock
        self._waits = waits
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._stopped = False

    @property
    def running(self) -> int:
        return len(self._tasks)

    def schedule(self, row_id: int, generation_id: str, key_mask: str) -> None:
        """Look the row's cost up in the background (once per row)."""
        if self._stopped or row_id in self._tasks or not generation_id:
            return
        task = asyncio.get_running_loop().create_task(
            self._look_up(row_id, generation_id, key_mask),
            name=f"{TASK_NAME} {row_id}",
        )
        self._tasks[row_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(row_id, None))

    async def resume(self) -> None:
        """Take up the rows a previous instance left pending (recent ones; older ones are
        marked unknown)."""
        try:
            now = self._clock.wall()
            expired = await self._ledger.expire_pending(now - RESUME_WITHIN)
            rows = await self._ledger.pending_costs(now - RESUME_WITHIN, now)
        except LedgerError as exc:
            logger.warning(f"gemini-pic-gen: pending cost lookups not resumed: {exc.detail}")
            return
        for row in rows:
            self.schedule(row.row_id, row.generation_id, row.key_mask)
        if rows:
            logger.info(f"gemini-pic-gen: resumed {len(rows)} pending cost lookup(s)")
        if expired:
            logger.warning(f"gemini-pic-gen: {expired} cost lookup(s) too old to resume: unknown")

    async def stop(self) -> None:
        """Cancel every lookup and wait for it (unload); their rows stay pending."""
        self._stopped = True
        await cancel_and_wait(list(self._tasks.values()))

    async def _look_up(self, row_id: int, generation_id: str, key_mask: str) -> None:
        found, tries = GenerationCost(problem="not asked"), 0
        for wait in self._waits:
            await self._clock.sleep(wait)
            found = await self._ask(generation_id, key_mask)
            tries += 1
            if found.found or found.final:
                break
        try:
            if found.cost is not None:
                await self._ledger.set_cost(row_id, found.cost, COST_LOOKED_UP)
                logger.info(
                    f"gemini-pic-gen: generation {generation_id} cost {found.cost} USD "
                    f"(looked up, try {tries})"
                )
            else:
                await self._ledger.set_cost(row_id, None, COST_UNKNOWN)
                logger.warning(
                    f"gemini-pic-gen: cost of generation {generation_id} cannot be known "
                    f"({found.problem}, {tries} tries); its ledger row says unknown"
                )
        except LedgerError as exc:
            logger.error(f"gemini-pic-gen: looked-up cost not recorded: {exc.detail}")
