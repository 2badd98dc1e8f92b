"""Every cent counted, no black holes (issues 19 and 23) inside the real AstrBot: every billed
answer is a ledger row with its outcome, an answer cut midway gets its cost afterwards, a dead
path is told in one sentence, and the caps hold whatever the ledger does.

Each scenario prints one FIGURES line (what the user heard and when, the ledger rows written);
run with `-s` to read them.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta

import pytest

from tests.fakes.blackhole import BlackHole
from tests.fakes.openrouter import Generation, Reply, completion, data_url, make_png
from tests.support.harness import make_event
from tests.support.ledger_rows import fresh_id, rows_of
from utils.chat.jobs import tool_job
from utils.chat.texts.language import ZH
from utils.spend.ledger import COST_LOOKED_UP, COST_UNKNOWN, LEDGER_FILE

REFUSED = "模型出于安全策略拒绝生成这张图片，请换个说法试试。"
CUT = "图片传到一半连接断开了，没有收到图片；这次生成可能已经计费，为免重复扣费没有自动重试，请稍后再试。"
CAPS_UNCHECKED = (
    "设置了每日花费上限，但花费记录暂时无法读写、无法确认是否超出上限，所以这次没有发出请求；"
    "请联系管理员查看日志。"
)


def rows_text(rows) -> str:
    return "; ".join(
        f"{r.outcome} {r.pictures} pic {r.size or 'default'} cost {r.cost} ({r.cost_status})"
        for r in reversed(rows)
    )


def figures(scenario: str, heard: str, rows: str) -> None:
    print(f"\nFIGURES {scenario}: heard {heard}; ledger rows: {rows or 'none'}")


async def draw(astrbot, plugin, user: str, **args) -> str:
    event = make_event(sender_id=user)
    [text] = await astrbot.run_tool(
        event, plugin=plugin, image_description=f"a cat for {user}", **args
    )
    return text


async def stats_of(plugin) -> list[str]:
    event = make_event("/画图统计", sender_id="admin", role="admin")
    await plugin.cmd_stats(event)
    [text] = event.sent_texts()
    lines = text.splitlines()
    return lines[1 : lines.index("")]


async def lookups_done(plugin) -> None:
    for _ in range(500):
        if plugin.spend.lookups.running == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("cost lookups still running")


# --- billed answers without a picture count ------------------------------------------------------


async def test_a_refusal_a_text_answer_and_a_picture_count_toward_the_budget(
    astrbot, fake, plugin_config, on_day
):
    """0.039 each under a 0.1 USD daily budget: after a refusal, a text-only answer and a
    picture (0.117 in all), the fourth request is refused before any request."""
    clock, plugin = on_day
    plugin_config["daily_budget_usd"] = 0.1
    fake.enqueue(
        Reply(json_body=completion(images=None, finish_reason="content_filter")),
        Reply(json_body=completion(images=None, content="I can only describe a cat.")),
    )
    user = fresh_id("money")
    heard = [await draw(astrbot, plugin, user) for _ in range(3)]
    assert heard[0] == REFUSED
    assert heard[1] == "模型没有返回图片，它的回复是：I can only describe a cat."
    assert "已生成 1 张图片" in heard[2]
    assert len(fake.chat_requests()) == 3

    fourth = await draw(astrbot, plugin, user)
    midnight = (datetime.fromtimestamp(clock.wall()) + timedelta(days=1)).strftime("%m-%d 00:00")
    assert (
        fourth
        == f"机器人今天的画图总花费已达上限（每天共 0.10 美元），将在 {midnight} 重置，请明天再来。"
    )
    assert len(fake.chat_requests()) == 3  # refused before any request

    rows = await rows_of(plugin, user)
    assert [(r.outcome, r.pictures, r.cost) for r in reversed(rows)] == [
        ("refusal", 0, 0.039),
        ("text_only", 0, 0.039),
        ("picture", 1, 0.039),
    ]
    today = await stats_of(plugin)
    assert today[:2] == [
        "【今天】1 张图（3 次生成），0.117 美元",
        "另有 2 次未出图但已计费：0.078 美元（拒绝 1 次、只回复文字 1 次）",
    ]
    figures(
        "refusal, text only, picture under a 0.1 USD budget",
        " / ".join([*heard, fourth]),
        rows_text(rows),
    )


async def test_an_invalid_picture_is_billed_too(astrbot, fake, plugin_config, on_day):
    _, plugin = on_day
    fake.enqueue(Reply(json_body=completion(images=[data_url(b"not a picture at all")])))
    user = fresh_id("invalid")
    assert await draw(astrbot, plugin, user) == "模型返回的图片数据已损坏或格式不受支持，请重试。"
    [row] = await rows_of(plugin, user)
    assert (row.outcome, row.pictures, row.cost) == ("invalid_picture", 0, 0.039)


# --- an answer cut midway ------------------------------------------------------------------------


@pytest.mark.parametrize("known", [True, False], ids=["looked-up", "never-known"])
async def test_an_aborted_stream_gets_its_cost_from_the_generation_endpoint(
    astrbot, fake, plugin_config, on_day, known
):
    """The stream is cut in the middle of the picture. It is not sent again; its row is
    written at once (cost pending) and the spend side asks GET /api/v1/generation in the
    background, on the plugin's clock: 404 twice (OpenRouter knows a generation a few seconds
    after it ended), then its cost. A generation the service never knows ends as unknown."""
    clock, plugin = on_day
    plugin_config["daily_budget_usd"] = 5
    generation_id = f"gen-cut-{fresh_id('g')}"
    body = completion(images=[data_url(make_png("cut"))])
    body["id"] = generation_id
    fake.enqueue(Reply(json_body=body, action="truncate"))
    if known:
        fake.generations[generation_id] = Generation(0.039, not_found=2)
    user = fresh_id("cut")
    heard = await draw(astrbot, plugin, user)
    assert heard == CUT
    assert len(fake.chat_requests()) == 1

    await lookups_done(plugin)
    [row] = await rows_of(plugin, user)
    lookups = fake.generation_lookups(generation_id)
    assert all(r.key == plugin_config["openrouter_api_keys"][0] for r in lookups)
    if known:
        assert (row.outcome, row.cost, row.cost_status) == ("aborted", 0.039, COST_LOOKED_UP)
        assert len(lookups) == 3 and clock.background_sleeps == [2.0, 4.0, 8.0]
        assert (await stats_of(plugin))[:2] == [
            "【今天】0 张图（1 次生成），0.039 美元",
            "另有 1 次未出图但已计费：0.039 美元（中途断开 1 次）",
        ]
    else:
        assert (row.outcome, row.cost, row.cost_status) == ("aborted", None, COST_UNKNOWN)
        assert len(lookups) == 5 and sum(clock.background_sleeps) == 59
        assert (await stats_of(plugin))[:2] == [
            "【今天】0 张图（1 次生成），花费未知",
            "另有 1 次未出图但已计费：花费未知（中途断开 1 次）",
        ]
    assert clock.sleeps == []  # nothing of it on the request's path
    figures(
        f"aborted stream, cost {'looked up' if known else 'never known'}", heard, rows_text([row])
    )


# --- a dead path -------------------------------------------------------------------------------


@pytest.mark.realtime
async def test_a_black_holed_relay_is_told_in_one_sentence_and_not_retried(
    astrbot, fake, plugin_config, tool_timeout
):
    """The relay accepts every connection and never answers. Scaled from "a 20 s tool
    timeout, the user hears within 90 s" (8 s for the model lists + the 60 s first-byte
    deadline): AstrBot's tool timeout 2 s, the first-byte deadline 1 s (the lists wait no
    longer either). The tool answers the model in time, the chat hears one sentence naming no
    key within 3 s, and the request opened three connections: the two lists and one POST."""
    hole = BlackHole()
    await hole.start()
    tool_timeout(2)
    plugin_config.update(
        custom_api_base=hole.base_url,
        first_byte_timeout_seconds=1,
        max_retry_attempts=3,
    )
    event = make_event()
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        [text] = await astrbot.run_tool(event, timeout=2, image_description="a cat in the void")
        returned = loop.time() - started
        assert "还在生成中" in text  # answered before AstrBot's timeout: it did not cancel
        for _ in range(200):  # the detached request tells the chat itself
            if astrbot.platform.text():
                break
            await asyncio.sleep(0.05)
        heard_at = loop.time() - started
    finally:
        await hole.stop()
    heard = astrbot.platform.text()
    assert heard.startswith("图像服务没有应答（发出请求后 1 秒内没有任何回应），请稍后再试")
    assert "sk-or" not in heard and plugin_config["openrouter_api_keys"][0] not in heard
    assert heard_at < 3
    # The request's own connections; cost lookups the spend side resumed for earlier tests'
    # rows (background, they ask the configured address too) are not its doing.
    own = [r for r in hole.requests if not r.startswith("GET /api/v1/generation")]
    posts = [r for r in own if r.startswith("POST")]
    assert len(posts) == 1 and len(own) <= 3, hole.requests
    print(
        f"\nFIGURES black-holed relay, 2 s tool timeout, 1 s first-byte deadline: tool returned "
        f"at {returned:.1f} s, the chat heard at {heard_at:.1f} s: {heard!r}; connections "
        f"{len(own)} ({', '.join(own)}); ledger rows: none"
    )


@pytest.mark.realtime
async def test_a_plain_json_relay_slower_than_the_idle_limit_still_draws(
    astrbot, fake, plugin_config
):
    """A relay that does not stream answers plain JSON only when the picture is done: 1 s,
    past the idle limit (0.5 s) but within the first-byte deadline (2 s). Scaled from a 40 s
    answer, a 60 s idle limit and a first-byte deadline raised to 120 s."""
    plugin_config.update(read_timeout_seconds=0.5, first_byte_timeout_seconds=2)
    fake.enqueue(
        Reply(
            json_body=completion(images=[data_url(make_png("slow relay"))]), stream=False, delay=1
        )
    )
    user = fresh_id("relay")
    event = make_event(sender_id=user)
    loop = asyncio.get_running_loop()
    started = loop.time()
    [text] = await astrbot.run_tool(event, timeout=30, image_description="slow relay")
    took = loop.time() - started
    assert "已生成 1 张图片" in text and len(event.sent_images()) == 1
    assert len(fake.chat_requests()) == 1
    [row] = await rows_of(astrbot.plugin, user)
    assert (row.outcome, row.cost) == ("picture", 0.039)
    figures("plain-JSON relay answering after 1 s", f"{text!r} at {took:.1f} s", rows_text([row]))


# --- the ledger locked or unreadable -------------------------------------------------------------


async def test_an_unusable_ledger_refuses_with_a_money_cap_and_draws_without(
    astrbot, fake, plugin_config, locked_ledger
):
    """Another connection keeps the ledger locked. With a money cap the request is refused
    before anything is sent (every time, with an error in the log); without one it draws, and
    its row waits in memory until the ledger can be written again."""
    plugin = astrbot.plugin
    user = fresh_id("locked")
    plugin_config["daily_budget_usd"] = 5
    refused = [await draw(astrbot, None, user) for _ in range(2)]
    assert refused == [CAPS_UNCHECKED] * 2
    assert fake.chat_requests() == []
    plugin_config.update(daily_budget_usd=0, user_daily_limit=10)
    drawn = await draw(astrbot, None, user)
    assert "已生成 1 张图片" in drawn and len(fake.chat_requests()) == 1
    assert plugin.spend.guard.unrecorded == 1
    locked_ledger()  # the lock goes
    assert "已生成 1 张图片" in await draw(astrbot, None, user)
    assert plugin.spend.guard.unrecorded == 0
    rows = await rows_of(plugin, user)
    assert [r.outcome for r in rows] == ["picture", "picture"]
    figures("locked ledger", " / ".join([*refused, drawn]), rows_text(rows))


async def test_pictures_not_sent_while_the_ledger_was_locked_are_marked_on_their_row(
    astrbot, fake, plugin_config, locked_ledger
):
    """The row of an answer waits in memory (the ledger is locked) when its pictures fail to
    reach the chat: once written, it says they were not sent."""
    plugin = astrbot.plugin
    user = fresh_id("locked-unsent")
    plugin_config.update(daily_budget_usd=0, user_daily_limit=10)
    event = make_event(sender_id=user)
    event.send_error = RuntimeError("the adapter is down")
    [text] = await astrbot.run_tool(event, plugin=plugin, image_description="an unsent cat")
    assert "请不要再次调用画图工具重画" in text
    assert plugin.spend.guard.unrecorded == 1
    locked_ledger()  # the lock goes
    assert "已生成 1 张图片" in await draw(astrbot, None, user)
    rows = await rows_of(plugin, user)
    assert sorted(r.outcome for r in rows) == ["picture", "undelivered"]


async def test_a_ledger_locked_across_a_restart_keeps_its_rows_and_its_caps(
    astrbot, fake, plugin_config, locked_ledger
):
    """The plugin restarted while another connection held its ledger: the file is kept (no
    `.broken-` copy, the same rows), the caps fail closed meanwhile, and once the lock goes
    today's earlier spend still counts."""
    plugin = astrbot.plugin
    user = fresh_id("kept")
    path = plugin.spend.ledger.path
    locked_ledger()
    plugin_config["user_daily_budget_usd"] = 0.03
    assert "已生成 1 张图片" in await draw(astrbot, None, user)  # 0.039: the cap is reached
    before = len(await plugin.spend.ledger.latest(100_000))

    await plugin.terminate()
    locker = sqlite3.connect(str(path), isolation_level=None)
    locker.execute("PRAGMA locking_mode=EXCLUSIVE")
    locker.execute("BEGIN EXCLUSIVE")
    locker.execute("COMMIT")
    try:
        await plugin.initialize()
        refused = await draw(astrbot, None, user)
    finally:
        locker.close()
    assert refused == CAPS_UNCHECKED
    after = await draw(astrbot, None, user)
    assert after.startswith("你今天的画图花费已达上限（每人每天 0.03 美元）")
    assert len(fake.chat_requests()) == 1
    assert list(path.parent.glob(f"{LEDGER_FILE}.broken-*")) == []
    assert len(await plugin.spend.ledger.latest(100_000)) == before
    figures(
        "ledger locked across a restart",
        f"{refused} / {after}",
        rows_text(await rows_of(plugin, user)),
    )


# --- the row says what was sent --------------------------------------------------------------


async def test_a_2k_pictures_row_records_2k(astrbot, fake, plugin_config, on_day):
    _, plugin = on_day
    plugin_config["model_name"] = "google/gemini-3-pro-image-preview"
    user = fresh_id("size")
    assert "已生成 1 张图片" in await draw(astrbot, plugin, user, image_size="2k")
    assert "已生成 1 张图片" in await draw(astrbot, plugin, user)
    rows = await rows_of(plugin, user)
    assert [r.size for r in reversed(rows)] == ["2K", ""]
    assert fake.chat_requests()[0].body["image_config"] == {"image_size": "2K"}
    today = await stats_of(plugin)
    sizes = today[today.index("按尺寸：") + 1 :]
    assert sorted(sizes) == ["  · 2K：1 张，0.039 美元", "  · 模型默认：1 张，0.039 美元"]


# --- cancellation -------------------------------------------------------------------------------


@pytest.mark.parametrize("when", ["before-the-answer", "mid-stream"])
async def test_a_cancelled_request_releases_its_hold(astrbot, fake, plugin_config, on_day, when):
    """The request's task is cancelled (AstrBot shutting down, say): before any answer came,
    the hold is dropped and nothing is recorded; once a stream had started, its answer may be
    billed: a row (aborted, its cost looked up) and no hold."""
    _, plugin = on_day
    plugin_config["user_daily_limit"] = 5
    body = completion(images=[])
    if when == "before-the-answer":
        fake.enqueue(Reply(action="hang"))
    else:
        fake.enqueue(Reply(json_body=body, delay=30, keepalive=0.05))
        fake.generations[body["id"]] = Generation(0.039)
    user = fresh_id("cancel")
    event = make_event(sender_id=user)
    job = tool_job("a cat to cancel", None, "", "", False)
    request = plugin.pipeline.start(event, job, plugin.settings(), ZH)
    for _ in range(300):
        if fake.chat_requests():
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # the answer is coming in (mid-stream: keep-alives flow)
    assert plugin.spend.guard.in_flight == 1
    request.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request.task
    await plugin.spend.guard.settle()
    assert plugin.spend.guard.in_flight == 0
    rows = await rows_of(plugin, user)
    if when == "before-the-answer":
        assert rows == []
    else:
        await lookups_done(plugin)
        [row] = await rows_of(plugin, user)
        assert (row.outcome, row.pictures, row.generation_id) == ("aborted", 0, body["id"])
        assert (row.cost, row.cost_status) == (0.039, COST_LOOKED_UP)
    figures(f"request cancelled {when}", "nothing (cancelled)", rows_text(rows))


async def test_pictures_that_could_not_be_sent_are_marked_on_their_row(
    astrbot, fake, plugin_config, on_day
):
    _, plugin = on_day
    user = fresh_id("unsent")
    event = make_event(sender_id=user)
    event.send_error = RuntimeError("the adapter is down")
    [text] = await astrbot.run_tool(event, plugin=plugin, image_description="an unsent cat")
    assert "请不要再次调用画图工具重画" in text
    [row] = await rows_of(plugin, user)
    assert (row.outcome, row.pictures, row.cost) == ("undelivered", 1, 0.039)
    today = await stats_of(plugin)
    assert "其中 1 次生成的图片已计费，但没能发到聊天" in today
