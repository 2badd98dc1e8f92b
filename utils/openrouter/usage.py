"""What a generation cost and what a key has left, as OpenRouter reports them.

`usage_of()` reads the `usage` object of one parsed JSON object: a whole completion body, or one
chunk of a streamed answer (with `stream: true` the usage comes in the last chunk that carries
it, so a streaming reader keeps the last non-None result). `fetch_key_info()` asks
`GET <api_base>/v1/key` what the key's account has used and has left, `fetch_generation_cost()`
asks `GET <api_base>/v1/generation?id=…` what one generation cost. Keys never appear in
results or logs, only their masked form.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

import aiohttp
from astrbot.api import logger

from ..core.charges import Usage
from ..core.keys import mask_key, redact_keys

KEY_INFO_TIMEOUT = 5.0  # the report and the dashboard wait for this; they must stay quick


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return int(value)


def _amount(value: object) -> float | None:
    """A non-negative finite number of dollars, or None (absent, null, text, NaN, negative)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    if not math.isfinite(number) or number < 0:
        return None
    return number


def usage_of(body: object) -> Usage | None:
    """The `usage` of a completion body or stream chunk; None when it carries none."""
    if not isinstance(body, Mapping):
        return None
    usage = body.get("usage")
    if not isinstance(usage, Mapping):
        return None
    return Usage(
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        cost=_amount(usage.get("cost")),
    )


# --- GET /api/v1/key ------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyInfo:
    """The `data` of GET /api/v1/key. `limit`/`limit_remaining` None = no credit limit set."""

    label: str = ""
    limit: float | None = None
    limit_remaining: float | None = None
    usage: float | None = None
    usage_daily: float | None = None
    is_free_tier: bool | None = None

    @property
    def shown_label(self) -> str:
        """The admin's own name for the key; OpenRouter's default label is a key fragment."""
        label = self.label.strip()
        return "" if label.lower().startswith("sk-") else label


@dataclass(frozen=True)
class KeyReport:
    """One key's answer: `info` None when the service could not tell (see `problem`)."""

    masked: str
    info: KeyInfo | None = None
    problem: str = ""  # English, for the log; the user sees "unknown"


def key_info_of(body: object) -> KeyInfo | None:
    """The KeyInfo of a /key answer body, or None when it is not one."""
    if not isinstance(body, Mapping):
        return None
    data = body.get("data")
    if not isinstance(data, Mapping):
        return None
    label = data.get("label")
    free = data.get("is_free_tier")
    return KeyInfo(
        label=label if isinstance(label, str) else "",
        limit=_amount(data.get("limit")),
        limit_remaining=_amount(data.get("limit_remaining")),
        usage=_amount(data.get("usage")),
        usage_daily=_amount(data.get("usage_daily")),
        is_free_tier=free if isinstance(free, bool) else None,
    )


def key_info_url(api_base: str) -> str:
    """`api_base` as Settings holds it (the part before /v1)."""
    return f"{api_base.rstrip('/')}/v1/key"


async def fetch_key_info(
    session: aiohttp.ClientSession, api_base: str, key: str, timeout: float = KEY_INFO_TIMEOUT
) -> KeyReport:
    """Ask the service about one key; every failure becomes a KeyReport without info."""
    masked = mask_key(key)
    problem = ""
    try:
        async with session.get(
            key_info_url(api_base),
            headers={"Authorization": f"Bearer {key}"},
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            status = response.status
            raw = await response.read()
        if status != 200:
            problem = f"HTTP {status}"
        else:
            info = key_info_of(json.loads(raw))
            if info is not None:
                return KeyReport(masked, info)
            problem = "answer is not a key info object"
    except asyncio.TimeoutError:
        problem = f"no answer within {timeout:g} s"
    except aiohttp.ClientError as exc:
        problem = f"connection failed: {type(exc).__name__}"
    except (UnicodeDecodeError, ValueError):
        problem = "answer is not JSON"
    logger.warning(
        f"gemini-pic-gen: key info for {masked} unavailable: {redact_keys(problem, [key])}"
    )
    return KeyReport(masked, None, problem)


async def fetch_key_reports(
    session: aiohttp.ClientSession,
    api_base: str,
    keys: Iterable[str],
    timeout: float = KEY_INFO_TIMEOUT,
) -> list[KeyReport]:
    """fetch_key_info for every key at once, in the keys' order."""
    return list(
        await asyncio.gather(*(fetch_key_info(session, api_base, k, timeout) for k in keys))
    )


def credit_checker(
    session: aiohttp.ClientSession, api_base: str
) -> Callable[[str, float], Awaitable[KeyInfo | None]]:
    """The key pool's question about a key out of credits (key_pool.CreditCheck): GET /key."""

    async def check(key: str, timeout: float) -> KeyInfo | None:
        return (await fetch_key_info(session, api_base, key, timeout)).info

    return check


# --- GET /api/v1/generation -----------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationCost:
    """What GET /api/v1/generation said of one generation: its `total_cost` (USD), or why not.

    `final`: asking again cannot help (the key was refused, the answer is not what the
    endpoint gives); otherwise (404: OpenRouter knows a generation only a few seconds after it
    ended; a timeout, a 5xx) it may know later."""

    cost: float | None = None
    final: bool = False
    problem: str = ""  # English, for the log

    @property
    def found(self) -> bool:
        return self.cost is not None


def generation_url(api_base: str) -> str:
    return f"{api_base.rstrip('/')}/v1/generation"


def generation_cost_of(body: object) -> float | None:
    """`data.total_cost` of a generation answer, or None."""
    data = body.get("data") if isinstance(body, Mapping) else None
    return _amount(data.get("total_cost")) if isinstance(data, Mapping) else None


async def fetch_generation_cost(
    session: aiohttp.ClientSession,
    api_base: str,
    key: str,
    generation_id: str,
    timeout: float = KEY_INFO_TIMEOUT,
) -> GenerationCost:
    """Ask the service what one generation cost (with the key that made it); every failure
    becomes a GenerationCost without a cost."""
    try:
        async with session.get(
            generation_url(api_base),
            params={"id": generation_id},
            headers={"Authorization": f"Bearer {key}"},
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            status = response.status
            raw = await response.read()
    except asyncio.TimeoutError:
        return GenerationCost(problem=f"no answer within {timeout:g} s")
    except aiohttp.ClientError as exc:
        return GenerationCost(problem=f"connection failed: {type(exc).__name__}")
    if status == 404 or status == 429 or status >= 500:
        return GenerationCost(problem=f"HTTP {status}")
    if status != 200:
        return GenerationCost(final=True, problem=f"HTTP {status}")
    try:
        cost = generation_cost_of(json.loads(raw))
    except (UnicodeDecodeError, ValueError):
        return GenerationCost(final=True, problem="answer is not JSON")
    if cost is None:
        return GenerationCost(problem="no total_cost in the answer (not settled yet?)")
    return GenerationCost(cost)
