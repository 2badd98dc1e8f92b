"""How long a request may take: AstrBot's tool timeout, the tool's answer time, the budget."""

from __future__ import annotations

import pytest

from tests.support.astrbot_compat import keeps_tool_timeout_in_agent_runner
from utils.chat.timing import (
    BACKGROUND_ALLOWANCE,
    answer_within,
    host_tool_timeout,
    run_budget,
    tool_timeout_of,
)

# What the running AstrBot applies when its config has no tool-call timeout.
HOST = "AstrBot's own default"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"agent_runner": {"config": {"misc": {"tool_call_timeout": 20}}}}, 20.0),
        ({"provider_settings": {"tool_call_timeout": 45}}, 45.0),  # AstrBot before 4.28
        (
            {
                "agent_runner": {"config": {"misc": {"tool_call_timeout": 30}}},
                "provider_settings": {"tool_call_timeout": 90},
            },
            30.0,
        ),
        ({}, HOST),
        (None, HOST),
        ({"agent_runner": {"config": {"misc": {"tool_call_timeout": 0}}}}, HOST),
        ({"agent_runner": {"config": {"misc": {"tool_call_timeout": "x"}}}}, HOST),
        ({"agent_runner": {"config": {"misc": {"tool_call_timeout": True}}}}, HOST),
        ({"agent_runner": "broken"}, HOST),
    ],
)
def test_the_tool_timeout_comes_from_either_key(config, expected):
    assert tool_timeout_of(config) == (host_tool_timeout() if expected == HOST else expected)


def test_without_the_key_the_hosts_own_default_applies():
    """Read from AstrBot's default config: 60 s on 4.14, 120 s since 4.28."""
    assert host_tool_timeout() == (120.0 if keeps_tool_timeout_in_agent_runner() else 60.0)


@pytest.mark.parametrize("timeout", [3, 20, 120, 600])
def test_the_tool_answers_before_astrbot_cancels_it(timeout):
    answer = answer_within(timeout)
    assert 1.0 <= answer < timeout
    assert timeout - answer <= 10.0  # the margin stays small for long timeouts


def test_the_budget_follows_the_tool_timeout_unless_configured():
    assert run_budget(0, 20) == 20 + BACKGROUND_ALLOWANCE
    assert run_budget(0, 120) == 120 + BACKGROUND_ALLOWANCE
    assert run_budget(45, 120) == 45
