"""Requests-per-minute limits and group allow/deny lists, alone and through AstrBot's pipeline."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.fakes.clock import FakeClock
from tests.fakes.openrouter import Reply as FakeReply
from tests.fakes.openrouter import completion, data_url, make_png
from tests.support.harness import make_event
from utils.chat.limits import Requester, RequestLimiter, check_group
from utils.chat.texts.failures import user_message
from utils.chat.texts.language import ZH
from utils.core.errors import GroupNotAllowed, RateLimitHit
from utils.core.settings import LimitPolicy, Settings, clean_ids

ALICE = Requester("qq", "alice", "g1")
BOB = Requester("qq", "bob", "g1")


def test_user_limit_hits_and_resets_after_the_window():
    clock = FakeClock()
    limiter = RequestLimiter(clock=clock)
    policy = LimitPolicy(user_per_minute=2)
    limiter.acquire(ALICE, policy)
    clock.now += 10
    limiter.acquire(ALICE, policy)
    clock.now += 20
    with pytest.raises(RateLimitHit) as hit:
        limiter.acquire(ALICE, policy)
    assert hit.value.scope == "user" and hit.value.limit == 2
    assert hit.value.retry_after == pytest.approx(30)  # the first request leaves the window
    limiter.acquire(BOB, policy)  # another sender has their own allowance
    clock.now += 30
    limiter.acquire(ALICE, policy)  # the oldest request slid out
    with pytest.raises(RateLimitHit):
        limiter.acquire(ALICE, policy)


def test_group_limit_is_shared_and_does_not_charge_the_refused_sender():
    clock = FakeClock()
    limiter = RequestLimiter(clock=clock)
    policy = LimitPolicy(user_per_minute=1, group_per_minute=1)
    limiter.acquire(ALICE, policy)
    with pytest.raises(RateLimitHit) as hit:
        limiter.acquire(BOB, policy)
    assert hit.value.scope == "group"
    # Bob was refused by the group limit; in a private chat his own allowance is untouched.
    limiter.acquire(Requester("qq", "bob"), policy)


def test_zero_means_no_limit_and_admins_are_never_limited():
    limiter = RequestLimiter(clock=FakeClock())
    for _ in range(50):
        limiter.acquire(ALICE, LimitPolicy())
    admin = Requester("qq", "root", "g1", is_admin=True)
    for _ in range(5):
        limiter.acquire(admin, LimitPolicy(user_per_minute=1, group_per_minute=1))


def test_idle_senders_are_forgotten():
    clock = FakeClock()
    limiter = RequestLimiter(clock=clock)
    policy = LimitPolicy(user_per_minute=1)
    for i in range(3000):
        limiter.acquire(Requester("qq", f"u{i}"), policy)
    clock.now += 61
    limiter.acquire(ALICE, policy)
    assert len(limiter._hits) <= 2


def test_group_lists():
    deny = LimitPolicy(group_denylist=frozenset({"g1"}))
    allow = LimitPolicy(group_allowlist=frozenset({"g2"}))
    with pytest.raises(GroupNotAllowed):
        check_group(ALICE, deny)
    with pytest.raises(GroupNotAllowed):
        check_group(ALICE, allow)
    check_group(Requester("qq", "alice", "g2"), allow)
    check_group(Requester("qq", "alice"), allow)  # private chats are not groups
    check_group(Requester("qq", "alice"), deny)


def test_config_values_are_read_leniently():
    assert clean_ids(["123", 456, " ", None]) == {"123", "456"}
    assert clean_ids("1, 2，3\n4") == {"1", "2", "3", "4"}
    settings = Settings.from_config(
        {"user_requests_per_minute": "3", "group_requests_per_minute": -5, "group_denylist": [9]}
    )
    assert settings.limits == LimitPolicy(3, 0, frozenset(), frozenset({"9"}))


def test_messages_are_clear_chinese():
    assert user_message(ZH, RateLimitHit("x", "user", 2, 12.2)) == (
        "你画图太频繁了（每人每分钟最多 2 次），请约 13 秒后再试。"
    )
    assert "本群" in user_message(ZH, RateLimitHit("x", "group", 5, 0.1))
    assert (
        user_message(ZH, GroupNotAllowed("x")) == "本群未开启画图功能，如需使用请联系机器人管理员。"
    )


# --- through AstrBot ------------------------------------------------------------------------------


async def test_user_limit_through_commands(astrbot, fake, plugin_config, virtual_time):
    """The instance's command handler is called directly: AstrBot dispatches to the instance it
    built, whose clock cannot be moved (dispatch itself is tested with the allow/deny lists)."""
    clock, plugin = virtual_time.clock, virtual_time.plugin
    plugin_config["user_requests_per_minute"] = 1
    plugin_config["progress_message"] = True

    async def draw(text: str):
        event = make_event(text, sender_id="301")
        await plugin.cmd_draw(event)
        return event

    first = await draw("/画图 a cat")
    assert len(first.sent_images()) == 1

    clock.now += 59
    second = await draw("/画图 a dog")
    assert second.sent_text() == "你画图太频繁了（每人每分钟最多 1 次），请约 1 秒后再试。"
    assert second.sent_images() == []
    assert len(fake.chat_requests()) == 1  # refused without touching the image service

    clock.now += 2
    third = await draw("/画图 a bird")
    assert len(third.sent_images()) == 1
    assert [r.prompt for r in fake.chat_requests()] == ["a cat", "a bird"]


async def test_group_limit_through_the_tool(astrbot, fake, plugin_config, virtual_time):
    clock, plugin = virtual_time.clock, virtual_time.plugin
    plugin_config["group_requests_per_minute"] = 2
    for sender in ("401", "402"):
        event = make_event(sender_id=sender, group_id="777")
        assert (
            "已生成" in (await astrbot.run_tool(event, image_description="a cat", plugin=plugin))[0]
        )
    refused = make_event(sender_id="403", group_id="777")
    texts = await astrbot.run_tool(refused, image_description="a cat", plugin=plugin)
    assert texts == ["本群画图太频繁了（每分钟最多 2 次），请约 60 秒后再试。"]
    other_group = make_event(sender_id="403", group_id="778")
    assert (
        "已生成"
        in (await astrbot.run_tool(other_group, image_description="a cat", plugin=plugin))[0]
    )
    clock.now += 60
    again = make_event(sender_id="403", group_id="777")
    assert "已生成" in (await astrbot.run_tool(again, image_description="a cat", plugin=plugin))[0]
    assert len(fake.chat_requests()) == 4


@pytest.mark.parametrize(
    ("allow", "deny", "group", "allowed"),
    [
        ([], ["555"], "555", False),
        ([], ["555"], "556", True),
        (["556"], [], "555", False),
        (["556"], [], "556", True),
        (["556"], [], None, True),  # private chat
    ],
)
async def test_allow_and_deny_lists_through_commands(
    astrbot, fake, plugin_config, allow, deny, group, allowed
):
    plugin_config["group_allowlist"] = allow
    plugin_config["group_denylist"] = deny
    plugin_config["progress_message"] = True
    event = await astrbot.dispatch(make_event("/画图 a cat", group_id=group))
    if allowed:
        assert len(event.sent_images()) == 1
        assert len(fake.chat_requests()) == 1
    else:
        assert event.sent_text() == "本群未开启画图功能，如需使用请联系机器人管理员。"
        assert fake.chat_requests() == []


async def test_concurrent_requests_cannot_share_the_last_slot(astrbot, fake, plugin_config):
    plugin_config["user_requests_per_minute"] = 3
    fake.default = lambda recorded: FakeReply(
        json_body=completion(images=[data_url(make_png(recorded.prompt))]), delay=0.05
    )
    events = [make_event(sender_id="501") for _ in range(8)]
    results = await asyncio.gather(
        *(astrbot.run_tool(e, image_description=f"cat {i}") for i, e in enumerate(events))
    )
    done = [r for r in results if "已生成" in r[0]]
    refused = [r for r in results if "太频繁" in r[0]]
    assert len(done) == 3 and len(refused) == 5
    assert len(fake.chat_requests()) == 3


def test_new_settings_default_to_the_promised_behaviour(astrbot):
    settings = Settings.from_config({})
    assert settings.translate_prompt is True
    assert settings.progress_message is True
    assert settings.translate_timeout == 5.0
    assert settings.limits == LimitPolicy()
    config_file = astrbot.root / "data" / "config" / f"{astrbot.plugin_dir.name}_config.json"
    on_disk = json.loads(config_file.read_text(encoding="utf-8-sig"))
    translation, limits = on_disk["translation"], on_disk["limits"]
    assert translation["translate_prompt"] is True and translation["progress_message"] is True
    assert limits["user_requests_per_minute"] == 0 == limits["group_requests_per_minute"]
    assert limits["group_allowlist"] == [] == limits["group_denylist"]
    assert translation["translate_proxy"] == ""
