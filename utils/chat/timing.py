"""How long a request may take: AstrBot's tool-call timeout, when the tool must answer, and the
whole run's budget. Pure functions of the configs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# AstrBot's own default when its config does not say.
DEFAULT_TOOL_TIMEOUT = 120.0
# After the tool has answered, a detached request may still take this long: room for two slow
# 4K pictures (30-90 s each) or a retry after a failed try.
BACKGROUND_ALLOWANCE = 180.0


def tool_timeout_of(config: Mapping[str, Any] | None) -> float:
    """AstrBot's tool-call timeout for an event's config: `agent_runner.config.misc` since 4.28,
    `provider_settings` before (4.28 migrates and deletes that key); 120 s when neither says."""
    for path in (("agent_runner", "config", "misc"), ("provider_settings",)):
        node: Any = config
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        value = node.get("tool_call_timeout") if isinstance(node, Mapping) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
    return DEFAULT_TOOL_TIMEOUT


def answer_within(tool_timeout: float) -> float:
    """When the tool hands its answer to the model: before AstrBot cancels it, with a margin
    for AstrBot's own work after the tool returns (15 %, at least 2 s, at most 10 s)."""
    margin = min(10.0, max(2.0, tool_timeout * 0.15))
    return max(1.0, tool_timeout - margin)


def run_budget(configured: float, tool_timeout: float) -> float:
    """The whole run's time: the configured budget, or (0) the tool timeout plus the
    background allowance."""
    return configured if configured > 0 else tool_timeout + BACKGROUND_ALLOWANCE
