"""How long a request may take: AstrBot's tool-call timeout, when the tool must answer, and the
whole run's budget. Pure functions of the configs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# When neither the config nor AstrBot's own defaults say: the lower of the defaults AstrBot
# has had (60 s before 4.28, 120 s since), so the tool never answers too late.
FALLBACK_TOOL_TIMEOUT = 60.0
# After the tool has answered, a detached request may still take this long: room for two slow
# 4K pictures (30-90 s each) or a retry after a failed try.
BACKGROUND_ALLOWANCE = 180.0


def tool_timeout_of(config: Mapping[str, Any] | None) -> float:
    """AstrBot's tool-call timeout for an event's config: `agent_runner.config.misc` since 4.28,
    `provider_settings` before (4.28 migrates and deletes that key); when neither says, the
    default of the running AstrBot (host_tool_timeout)."""
    return _configured(config) or host_tool_timeout()


def host_tool_timeout() -> float:
    """The running AstrBot's own default tool-call timeout, from its default config (60 s on
    4.14, 120 s on 4.28+), which is what it applies when the key is missing."""
    try:
        from astrbot.core.config.default import DEFAULT_CONFIG
    except ImportError:  # a layout we do not know
        return FALLBACK_TOOL_TIMEOUT
    return _configured(DEFAULT_CONFIG) or FALLBACK_TOOL_TIMEOUT


def _configured(config: Mapping[str, Any] | None) -> float | None:
    for path in (("agent_runner", "config", "misc"), ("provider_settings",)):
        node: Any = config
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        value = node.get("tool_call_timeout") if isinstance(node, Mapping) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
    return None


def answer_within(tool_timeout: float) -> float:
    """When the tool hands its answer to the model: before AstrBot cancels it, with a margin
    for AstrBot's own work after the tool returns (15 %, at least 2 s, at most 10 s)."""
    margin = min(10.0, max(2.0, tool_timeout * 0.15))
    return max(1.0, tool_timeout - margin)


def run_budget(configured: float, tool_timeout: float) -> float:
    """The whole run's time: the configured budget, or (0) the tool timeout plus the
    background allowance."""
    return configured if configured > 0 else tool_timeout + BACKGROUND_ALLOWANCE
