"""usage.cost and token counts from completions and stream chunks; GET /api/v1/key."""

from __future__ import annotations

import aiohttp
import pytest

from tests.conftest import REAL_LOOKING_KEYS
from tests.fakes.openrouter import Reply, completion, key_info
from tests.support.logs import captured_log
from utils.core.keys import mask_key
from utils.openrouter.usage import (
    KeyInfo,
    Usage,
    fetch_key_info,
    fetch_key_reports,
    key_info_of,
    usage_of,
)

KEY = REAL_LOOKING_KEYS[0]


def test_a_completion_body_gives_tokens_and_cost():
    body = completion(images=[], cost=0.0387)
    assert usage_of(body) == Usage(prompt_tokens=10, completion_tokens=1290, cost=0.0387)


def test_a_body_without_cost_has_unknown_cost():
    usage = usage_of(completion(images=[], cost=None))
    assert usage == Usage(10, 1290, None)
    assert usage is not None and not usage.cost_known


@pytest.mark.parametrize("cost", [None, "0.04", True, -1.0, float("nan"), float("inf"), [1]])
def test_a_cost_that_is_not_a_usable_amount_is_unknown(cost):
    usage = usage_of({"usage": {"prompt_tokens": 3, "completion_tokens": 4, "cost": cost}})
    assert usage == Usage(3, 4, None)


def test_free_generations_cost_zero_which_is_known():
    usage = usage_of({"usage": {"cost": 0}})
    assert usage == Usage(None, None, 0.0) and usage.cost_known


@pytest.mark.parametrize("body", [None, [], "text", {}, {"usage": None}, {"usage": "x"}])
def test_no_usage_object_means_none(body):
    assert usage_of(body) is None


def test_in_a_stream_the_last_chunk_that_carries_usage_wins():
    chunks = [
        {"choices": [{"delta": {"content": "Here"}}]},
        {"choices": [{"delta": {"images": []}}], "usage": None},
        {"choices": [{"delta": {}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 1300, "cost": 0.04}},
    ]
    found = None
    for chunk in chunks:
        found = usage_of(chunk) or found
    assert found == Usage(12, 1300, 0.04)


def test_key_info_body():
    info = key_info_of({"data": key_info(limit=None, limit_remaining=None, label="team bot")})
    assert info == KeyInfo("team bot", None, None, 2.5, 0.5, False)
    assert info.shown_label == "team bot"
    default_label = key_info_of({"data": key_info()})
    assert default_label is not None and default_label.shown_label == ""  # a key fragment


@pytest.mark.parametrize("body", [None, {}, {"data": None}, {"data": []}, {"error": {}}])
def test_not_a_key_info_body(body):
    assert key_info_of(body) is None


async def test_fetch_key_info_from_the_service(fake):
    fake.key_infos[KEY] = key_info(limit=20.0, limit_remaining=12.25, usage_daily=1.5)
    async with aiohttp.ClientSession() as session:
        report = await fetch_key_info(session, fake.base_url, KEY)
    assert report.masked == mask_key(KEY) and report.problem == ""
    assert report.info is not None
    assert (report.info.limit, report.info.limit_remaining, report.info.usage_daily) == (
        20.0,
        12.25,
        1.5,
    )
    [request] = fake.key_requests()
    assert request.path == "/api/v1/key" and request.key == KEY


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        (Reply.error(404, "Not Found"), "HTTP 404"),
        (Reply.error(401, "bad key"), "HTTP 401"),
        (Reply.html(502), "HTTP 502"),
        (Reply(raw_body=b"not json"), "answer is not JSON"),
        (Reply(json_body={"data": "nope"}), "answer is not a key info object"),
        (Reply(action="drop"), "connection failed"),
        (Reply(action="hang"), "no answer within"),
    ],
)
async def test_every_failure_is_logged_and_shown_as_unknown(fake, fault, problem):
    fake.key_reply = fault
    async with aiohttp.ClientSession() as session:
        with captured_log() as log:
            report = await fetch_key_info(session, fake.base_url, KEY, timeout=0.5)
    assert report.info is None
    assert problem in report.problem
    assert mask_key(KEY) in log.text and problem in log.text
    assert KEY not in log.text and KEY not in repr(report)


async def test_reports_for_several_keys_keep_their_order(fake):
    keys = REAL_LOOKING_KEYS
    fake.key_replies[keys[1]] = Reply.error(500)
    fake.key_infos[keys[2]] = key_info(limit_remaining=1.0)
    async with aiohttp.ClientSession() as session:
        reports = await fetch_key_reports(session, fake.base_url, keys)
    assert [r.masked for r in reports] == [mask_key(k) for k in keys]
    assert reports[1].info is None
    assert reports[0].info is not None and reports[0].info.limit_remaining == 7.5
    assert reports[2].info is not None and reports[2].info.limit_remaining == 1.0
