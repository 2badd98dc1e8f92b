"""Prompt translation: real googletrans against the fake Google endpoint, alone and in the plugin."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.fakes.clock import FakeClock
from tests.fakes.translate import HOST
from tests.support.harness import make_event
from utils.chat.translate import (
    PAUSE_FIRST,
    PromptTranslator,
    has_cjk,
    protect_quotes,
    restore_quotes,
)

QUOTES = [
    ('"', '"'),
    ("“", "”"),
    ("「", "」"),
    ("『", "』"),
    ("«", "»"),
    ("‘", "’"),
]


@pytest.fixture
async def translator():
    instance = PromptTranslator()
    yield instance
    await instance.close()


# --- pure helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a cat", False), ("一只猫", True), ("ねこ", True), ("고양이", True), ("café «ok»", False)],
)
def test_cjk_detection(text, expected):
    assert has_cjk(text) is expected


@pytest.mark.parametrize(("op", "cl"), QUOTES)
def test_every_quote_style_is_protected_and_restored(op, cl):
    prompt = f"画一只猫，牌子上写着{op}生日快乐{cl}"
    protected = protect_quotes(prompt)
    assert "生日快乐" not in protected.text
    assert protected.quoted == ("生日快乐",)
    assert f"{op}QZX0{cl}" in protected.text
    assert restore_quotes(protected.text, protected.quoted) == prompt


def test_restore_refuses_lost_or_duplicated_tokens():
    quoted = ("你好", "再见")
    assert restore_quotes('say "QZX0" and "QZX1"', quoted) == 'say "你好" and "再见"'
    assert restore_quotes('say "qzx 1" and "QZX0"', quoted) == 'say "再见" and "你好"'
    assert restore_quotes('say "QZX0"', quoted) is None
    assert restore_quotes('say "QZX0" "QZX0" "QZX1"', quoted) is None


# --- googletrans against the fake endpoint ----------------------------------------------------------


async def test_translates_through_the_real_client_and_keeps_quoted_text(translator, fake_translate):
    outcome = await translator.translate(
        "画一只猫拿着写着“生日快乐”的牌子", timeout=5, proxy=fake_translate.proxy_url
    )
    assert outcome.translated and not outcome.failed
    assert outcome.text == "Draw a cat holding with the words “生日快乐” on a sign"
    assert fake_translate.connects == [f"{HOST}:443"]
    [request] = fake_translate.requests
    assert request.params["client"] == ["gtx"]
    assert request.params["sl"] == ["auto"] and request.params["tl"] == ["en"]
    # The quoted words never left the machine; only their token did.
    assert "生日快乐" not in request.query
    assert "QZX0" in request.query


@pytest.mark.parametrize("prompt", ["a cat on the moon", 'a sign that says "生日快乐"', ""])
async def test_nothing_to_translate_sends_no_request(translator, fake_translate, prompt):
    outcome = await translator.translate(prompt, timeout=5, proxy=fake_translate.proxy_url)
    assert outcome.text == prompt
    assert not outcome.translated and not outcome.failed
    assert fake_translate.requests == []
    assert fake_translate.connects == []


@pytest.mark.parametrize(
    ("fault", "note"),
    [
        ("500", "translation failed"),
        ("garbage", "translation failed"),
        ("echo", "unchanged"),
        ("drop_tokens", "lost the quoted text"),
    ],
)
async def test_failures_fall_back_to_the_original_prompt(translator, fake_translate, fault, note):
    fake_translate.fault = fault
    prompt = "画一只猫写着「喵」的牌子"
    outcome = await translator.translate(prompt, timeout=5, proxy=fake_translate.proxy_url)
    assert outcome.text == prompt
    assert outcome.failed and not outcome.translated
    assert note in outcome.note
    assert len(fake_translate.requests) == 1


async def test_a_failure_does_not_poison_the_next_translation(fake_translate):
    # googletrans answers a failed call with a module-level object holding the input; with
    # raise_exception on, a failed call must leave no trace in the next one.
    clock = FakeClock()
    translator = PromptTranslator(clock=clock)
    try:
        fake_translate.fault = "500"
        first = await translator.translate("一只猫", timeout=5, proxy=fake_translate.proxy_url)
        fake_translate.fault = None
        clock.advance(PAUSE_FIRST)  # past the rest a failure earns
        second = await translator.translate("一只狗", timeout=5, proxy=fake_translate.proxy_url)
    finally:
        await translator.close()
    assert first.failed and first.text == "一只猫"
    assert second.translated and second.text == "a dog"


async def test_a_hanging_translator_times_out_and_falls_back(translator, fake_translate):
    fake_translate.fault = "hang"
    outcome = await translator.translate("一只猫", timeout=0.5, proxy=fake_translate.proxy_url)
    assert outcome.text == "一只猫"
    assert outcome.failed and "timed out" in outcome.note


async def test_a_request_out_of_time_does_not_rest_the_translator(fake_translate):
    """The request had less time left than the configured timeout: the prompt goes out as
    written, but Google was not too slow, so the next chat's prompt is still translated."""
    clock = FakeClock()
    translator = PromptTranslator(clock=clock)
    fake_translate.fault = "hang"
    try:
        short = await translator.translate(
            "一只猫", timeout=5, limit=0.25, proxy=fake_translate.proxy_url
        )
        assert short.failed and "the time the request had left" in short.note
        assert translator.paused_until() is None
        fake_translate.fault = None
        nxt = await translator.translate("一只狗", timeout=5, proxy=fake_translate.proxy_url)
        assert nxt.translated and nxt.text == "a dog"
    finally:
        await translator.close()


async def test_unreachable_translator_falls_back(translator):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = await translator.translate("一只猫", timeout=2, proxy=f"http://127.0.0.1:{port}")
    assert outcome.text == "一只猫"
    assert outcome.failed and "ConnectError" in outcome.note


@pytest.mark.parametrize(
    "proxy", ["not a proxy", "ftp://127.0.0.1:21", "http://user:s3cret@127.0.0.1:1"]
)
async def test_a_bad_proxy_setting_falls_back(translator, proxy):
    outcome = await translator.translate("一只猫", timeout=2, proxy=proxy)
    assert outcome.text == "一只猫"
    assert outcome.failed and "s3cret" not in outcome.note


async def test_close_releases_the_connection(fake_translate):
    before = fake_translate.open_connections  # the live plugin may hold one
    translator = PromptTranslator()
    try:
        await translator.translate("一只猫", timeout=5, proxy=fake_translate.proxy_url)
        assert fake_translate.open_connections == before + 1  # kept alive for the next prompt
    finally:
        await translator.close()
    for _ in range(100):
        if fake_translate.open_connections == before:
            break
        await asyncio.sleep(0.01)
    assert fake_translate.open_connections == before


# --- inside the plugin ------------------------------------------------------------------------------


@pytest.fixture
def translating(plugin_config, fake_translate):
    plugin_config["translate_prompt"] = True
    return plugin_config


async def test_command_prompt_is_translated_with_quotes_intact(
    astrbot, fake, fake_translate, translating, plugin_log
):
    event = await astrbot.dispatch(make_event("/画图 画一只猫写着“早上好”的牌子"))
    [request] = fake.chat_requests()
    assert request.prompt == "Draw a cat with the words “早上好” on a sign"
    assert len(event.sent_images()) == 1
    logged = [r.getMessage() for r in plugin_log]
    assert any("prompt: Draw a cat with the words “早上好” on a sign" in m for m in logged)


async def test_tool_prompt_is_translated_too(astrbot, fake, fake_translate, translating):
    event = make_event("帮我画只狗")
    await astrbot.run_tool(event, image_description="一只狗在月球上")
    assert [r.prompt for r in fake.chat_requests()] == ["a dog on the moon"]


async def test_english_prompt_reaches_the_model_untouched(
    astrbot, fake, fake_translate, translating
):
    await astrbot.dispatch(make_event('/画图 a neon sign that says "你好"'))
    assert [r.prompt for r in fake.chat_requests()] == ['a neon sign that says "你好"']
    assert fake_translate.requests == []


@pytest.mark.parametrize("fault", ["500", "garbage"])
async def test_translation_failure_still_draws_the_original_prompt(
    astrbot, fake, fake_translate, translating, plugin_log, fault
):
    fake_translate.fault = fault
    event = await astrbot.dispatch(make_event("/画图 一只猫在月球上"))
    assert [r.prompt for r in fake.chat_requests()] == ["一只猫在月球上"]
    assert len(event.sent_images()) == 1
    warnings = [r.getMessage() for r in plugin_log if r.levelname == "WARNING"]
    assert any("translation failed" in m and "original prompt" in m for m in warnings)


async def test_translation_timeout_still_draws_the_original_prompt(
    astrbot, fake, fake_translate, translating, plugin_log
):
    translating["translate_timeout"] = 0.5
    fake_translate.fault = "hang"
    event = await astrbot.dispatch(make_event("/画图 一只猫在月球上"))
    assert [r.prompt for r in fake.chat_requests()] == ["一只猫在月球上"]
    assert len(event.sent_images()) == 1
    assert any("timed out" in r.getMessage() for r in plugin_log)


async def test_translation_off_sends_chinese_as_is(astrbot, fake, fake_translate, plugin_config):
    await astrbot.dispatch(make_event("/画图 一只猫"))
    assert [r.prompt for r in fake.chat_requests()] == ["一只猫"]
    assert fake_translate.requests == []


async def test_terminate_closes_the_plugins_translator(astrbot, fake_translate):
    # A second instance of the loaded plugin class, as AstrBot makes on a config reload.
    plugin = type(astrbot.plugin)(astrbot.context, {})
    before = fake_translate.open_connections
    try:
        outcome = await plugin.pipeline.shared.translator.translate(
            "一只猫", timeout=5, proxy=fake_translate.proxy_url
        )
        assert outcome.translated
        assert fake_translate.open_connections == before + 1
    finally:
        await plugin.terminate()
    for _ in range(100):
        if fake_translate.open_connections == before:
            break
        await asyncio.sleep(0.01)
    assert fake_translate.open_connections == before


# --- a translator that keeps failing rests --------------------------------------------------------


async def test_unreachable_google_is_asked_once_then_rests_until_the_pause_ends(fake_translate):
    clock = FakeClock()
    translator = PromptTranslator(clock=clock)
    fake_translate.fault = "hang"  # Google never answers (blocked, no proxy)
    try:
        first = await translator.translate("一只猫", timeout=0.25, proxy=fake_translate.proxy_url)
        assert first.failed and "timed out" in first.note
        assert translator.paused_until() == clock.wall() + PAUSE_FIRST

        second = await translator.translate("一只狗", timeout=0.25, proxy=fake_translate.proxy_url)
        assert second.failed and "paused" in second.note and second.text == "一只狗"
        assert len(fake_translate.requests) == 1  # the second prompt did not wait for Google

        clock.advance(PAUSE_FIRST)  # the pause is over: tried again, and failing doubles it
        await translator.translate("一只狗", timeout=0.25, proxy=fake_translate.proxy_url)
        assert len(fake_translate.requests) == 2
        assert translator.paused_until() == clock.wall() + 2 * PAUSE_FIRST

        clock.advance(2 * PAUSE_FIRST)
        fake_translate.fault = None  # reachable again: translated, and no pause left
        back = await translator.translate("一只狗", timeout=5, proxy=fake_translate.proxy_url)
        assert back.translated and translator.paused_until() is None
    finally:
        await translator.close()


async def test_with_google_unreachable_the_second_chinese_prompt_does_not_wait(
    astrbot, fake, fake_translate, translating, plugin_log, admin
):
    translating["translate_timeout"] = 0.5
    fake_translate.fault = "hang"
    await astrbot.dispatch(make_event("/画图 一只猫"))
    await astrbot.dispatch(make_event("/画图 一只狗"))
    assert [r.prompt for r in fake.chat_requests()] == ["一只猫", "一只狗"]
    assert len(fake_translate.requests) == 1
    assert any("translation paused" in r.getMessage() for r in plugin_log)

    shown = await astrbot.dispatch(make_event("/画图配置", sender_id=admin))
    assert "翻译连续失败" in shown.sent_texts()[0] and "已暂停到" in shown.sent_texts()[0]
    translating["reply_lang"] = "en"
    english = await astrbot.dispatch(make_event("/draw_config", sender_id=admin))
    assert "Translation kept failing" in english.sent_texts()[0]
