"""How long a request may take: AstrBot's tool timeout, the tool's answer time, the budget."""

from __future__ import annotations

import pytest

from utils.chat.timing import (
    BACKGROUND_ALLOWANCE,
    DEFAULT_TOOL_TIMEOUT,
    answer_within,
    run_budget,
    tool_timeout_of,
)


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
        ({}, DEFAULT_TOOL_TIMEOUT),
        (None, DEFAULT_TOOL_TIMEOUT),
        ({"agent_runner": {"config": {"misc": {"tool_call_timeout": 0}}}}, DEFAULT_TOOL_TIMEOUT),
        ({"agent_runner": {"config": {"misc": {"tool_call_timeout": "x"}}}}, DEFAULT_TOOL_TIMEOUT),
        ({"agent_runner": {"config": {"misc": {"tool_call_timeout": True}}}}, DEFAULT_TOOL_TIMEOUT),
        ({"agent_runner": "broken"}, DEFAULT_TOOL_TIMEOUT),
    ],
)
def test_the_tool_timeout_comes_from_either_key(config, expected):
    assert tool_timeout_of(config) == expected


@pytest.mark.parametrize("timeout", [3, 20, 120, 600])
def test_the_tool_answers_before_astrbot_cancels_it(timeout):
    answer = answer_within(timeout)
    assert 1.0 <= answer < timeout
    assert timeout - answer <= 10.0  # the margin stays small for long timeouts


def test_the_budget_follows_the_tool_timeout_unless_configured():
    assert run_budget(0, 20) == 20 + BACKGROUND_ALLOWANCE
    assert run_budget(0, 120) == 120 + BACKGROUND_ALLOWANCE
    assert run_budget(45, 120) == 45
