"""Every wording function says the same thing in both languages: each failure of the exception
hierarchy and each reply, admin answer and report, filled with data that reaches every
branch, comes out English without a CJK character, and Chinese with one, carrying the same
numbers, names and times."""

from __future__ import annotations

import inspect
import re
import time
from pathlib import Path

import pytest

from tests.support.language import CJK
from utils.chat.jobs import DrawOutcome
from utils.chat.texts import admin, help, keys, models, replies, spend
from utils.chat.texts.failures import user_message
from utils.chat.texts.language import EN, ZH
from utils.core import errors as e
from utils.core.charges import Charge, Outcome
from utils.core.settings import LimitPolicy, Settings, SpendPolicy
from utils.imaging.outgoing import Outgoing
from utils.imaging.references import References
from utils.imaging.store import SavedImage
from utils.openrouter.capabilities import (
    CHAT_API,
    IMAGES_API,
    Adjustment,
    ImageCapabilities,
    ModelRoute,
    ModelSummary,
    ResolvedImageOptions,
)
from utils.openrouter.key_pool import KeyState, KeyStatus
from utils.openrouter.model_catalog import ModelPrice
from utils.openrouter.usage import KeyInfo, KeyReport
from utils.spend.ledger import (
    DayTotals,
    GroupTotals,
    ModelTotals,
    OutcomeTotals,
    SizeTotals,
    Summary,
    Totals,
    UserTotals,
)
from utils.spend.report import SpendReport, SpendStats
from utils.ttp import GenerationResult

AT = time.mktime((2026, 3, 4, 15, 30, 0, 0, 0, -1))
R = e.ReferenceImageError
A = e.InvalidArgumentError


def _charged(error: e.PicGenError) -> e.PicGenError:
    """The failure of an answer that may be billed (a stream cut midway)."""
    error.charge = Charge(Outcome.ABORTED, "m/a", "sk-or-…abcd", "gen-1")
    return error


# At least one instance of every exception class (several where the wording branches).
FAILURES: list[BaseException] = [
    e.NoApiKeyError(),
    e.MissingPromptError(),
    A("d", A.ASPECT_RATIO, "7:3", ("1:1", "16:9")),
    A("d", A.IMAGE_SIZE, "8K", ("1K", "2K", "4K")),
    A("d", A.MODEL_ID, "a b"),
    A("d", A.API_BASE, "ftp://x"),
    A("d", "other", "x"),
    e.UnsupportedImageOptionError("d", "m/a", A.ASPECT_RATIO, "8:1", ("1:1",), ("m/b", "m/c")),
    e.UnsupportedImageOptionError("d", "m/a", A.IMAGE_SIZE, "4K", ()),
    e.ConfigSaveError(),
    e.GroupNotAllowed(),
    e.RateLimitHit("d", "user", 2, 12.2),
    e.RateLimitHit("d", "group", 5, 0.1),
    *(e.DailyCapReached("d", cap, 2, 2, AT) for cap in spend._CAP_SUBJECT),
    e.DailyCapReached("d", "some_new_cap", 2, 2, AT),
    e.LedgerError(),
    *(R("d", reason) for reason in (R.MISSING, R.UNUSABLE, R.FORWARD)),
    R("d", R.TOO_MANY, found=6, limit=4),
    R("d", R.TOO_MANY, found=6, limit=4, avatars=2),
    R("d", R.NO_AVATARS, platform="aiocqhttp"),
    R("d", R.NO_AVATARS, platform="telegram"),
    *(R("d", reason, position=2) for reason in (R.TIMEOUT, R.TOO_LARGE, R.DOWNLOAD, R.INVALID)),
    R("d", R.SOURCE, own_avatar=True),
    R("d", "odd", avatar_of="Alice"),
    e.UpstreamError("d", 500),
    e.InvalidKeyError("d", 401),
    e.OutOfCreditsError("d", 402),
    e.OutOfCreditsError("d", 402, retry_after=59.2, retry_at=AT),
    e.UnknownKeyError("d", "zzzz", (), ("sk-or-…a1a1", "sk-or-…b2b2")),
    e.UnknownKeyError("d", "same", ("sk-or-…same", "sk-or-…same"), ("sk-or-…same",) * 2),
    e.RateLimitedError("d", retry_after=3),
    e.RateLimitedError("d"),
    e.ModerationError("d", ("violence", "gore")),
    e.ModerationError("d"),
    e.ModelUnavailableError("d", "m/old", ("m/a", "m/b")),
    e.ModelUnavailableError("d", "m/old"),
    e.ModalitiesUnsupportedError("d", "m/flux"),
    e.ReferencesNotAcceptedError("d", "m/words", ("m/a", "m/b")),
    e.ReferencesNotAcceptedError("d", "m/words"),
    e.DailyCapReached("d", e.DailyCapReached.BOT_BUDGET, 0.1, 0.08, AT, 0.04),
    e.BadRequestError("d", 400),
    e.UpstreamUnavailableError("d", 503),
    e.UpstreamUnavailableError("d"),
    e.UpstreamTimeoutError("d", 408),
    e.ConnectionLostError("d"),
    _charged(e.ConnectionLostError("d")),
    e.NoAnswerError("d", 60),
    e.UnreachableError("d"),
    e.LedgerUnavailableError("d"),
    e.DeadlineExceededError("d", 100, e.UnreachableError("x")),
    e.DeadlineExceededError("d", 100, e.NoAnswerError("x", 60)),
    e.AllKeysCoolingDownError("d", 89.2, AT, 3),
    e.AllKeysCoolingDownError("d", 5, AT, 1),
    e.AllKeysCoolingDownError("d", 120, AT, 3, cooling=1, unusable=2),
    e.DeadlineExceededError("d", 100, e.RateLimitedError("x", retry_after=200), 300),
    e.DeadlineExceededError("d", 100, e.UpstreamUnavailableError("x", 502)),
    e.DeadlineExceededError("d", 100, e.UpstreamTimeoutError("x", 408)),
    e.DeadlineExceededError("d", 100, e.ConnectionLostError("x")),
    e.DeadlineExceededError("d", 100, e.UpstreamError("x", 500)),
    e.DeadlineExceededError("d", 100, e.NoImageError("x")),
    e.DeadlineExceededError("d", 100),
    e.RefusalError(),
    e.NoImageError("d", "I can only describe it."),
    e.NoImageError("d"),
    e.InvalidImageError(),
    e.DownloadError("d", "timeout"),
    e.DeliveryError("d"),
    e.PluginClosedError("d"),
    e.PicGenError("d"),
    ValueError("a bug of ours"),
]


def _numbers(text: str) -> list[str]:
    """The figures, times and ids a text carries (what both languages must say alike)."""
    return sorted(re.findall(r"\d+(?:[.:]\d+)*", text))


def test_every_exception_class_is_worded_here():
    classes = {c for _, c in inspect.getmembers(e, inspect.isclass) if issubclass(c, e.PicGenError)}
    assert classes <= {type(f) for f in FAILURES}


@pytest.mark.parametrize("error", FAILURES, ids=lambda f: type(f).__name__)
def test_each_failure_in_both_languages(error):
    chinese, english = user_message(ZH, error), user_message(EN, error)
    assert CJK.search(chinese), chinese
    assert english and not CJK.search(english), english
    assert _numbers(chinese) == _numbers(english), (chinese, english)


def _saved(name: str, size: int, side: int = 4096) -> SavedImage:
    return SavedImage(Path(name), "png", side, side, size)


def _outcomes() -> list[DrawOutcome]:
    big = Outgoing(_saved("a.png", 27_000_000), _saved("a.jpg", 4_800_000), over_limit=True)
    result = GenerationResult((big.original,), "Here you go.", "m/a", "sk-or-…abcd", discarded=2)
    options = ResolvedImageOptions(
        "m/a",
        None,
        "9:16",
        ImageCapabilities((), ("1:1", "9:16")),
        (Adjustment(A.IMAGE_SIZE, "4K", ""), Adjustment(A.ASPECT_RATIO, "1:4", "9:16")),
        route=ModelRoute("m/a", CHAT_API),
    )
    references = References(problems=(R("d", R.TIMEOUT, position=2),), found=2, avatars=1)
    return [
        DrawOutcome(None, e.OutOfCreditsError("d", 402)),
        DrawOutcome(result, e.DeliveryError("d"), undelivered=True),
        DrawOutcome(
            result,
            push_fell_back=True,
            references=references,
            no_reference_found=True,
            options=options,
            outgoing=(big,),
            originals_sent=True,
        ),
        DrawOutcome(result, outgoing=(big,), originals_sent=False),
        DrawOutcome(result, continued=1),
        DrawOutcome(result, continued=2, continued_as_history=True, options=options),
        DrawOutcome(result, nothing_remembered=True),
    ]


def _settings(**changes) -> Settings:
    settings = Settings.from_config(
        {
            "openrouter_api_keys": ["sk-or-v1-" + "a" * 40, "sk-or-v1-" + "b" * 40],
            "translate_proxy": "http://user:pw@127.0.0.1:7890",
            "group_allowlist": ["1", "2"],
            "send_original_file": True,
            "avatar_url_template": "",
        }
    )
    spend_policy = SpendPolicy(1, 2, 0.5, 1.5, 10, caps_apply_to_admins=True)
    limits = LimitPolicy(3, 4)
    return Settings(**{**vars(settings), "spend": spend_policy, "limits": limits, **changes})


def _report() -> SpendStats:
    # 4 pictures, 2 billed answers without one, 1 picture not sent; 2 costs unknown (1 pending).
    totals = Totals(6, 4, 0.195, 2, 2, 0.078, 1, 1)
    outcome = Totals(1, 0, 0.039, 0, 1, 0.039, 0, 0)
    summary = Summary(
        "2026-03-04",
        "2026-03-04",
        totals,
        (GroupTotals("aiocqhttp", "g1", totals), GroupTotals("telegram", "", Totals(1, 1, 0, 1))),
        (UserTotals("aiocqhttp", "u1", totals),),
        (ModelTotals("m/a", totals),),
        tuple(OutcomeTotals(o, outcome) for o in spend.OUTCOME_NAMES),
        (SizeTotals("2K", totals), SizeTotals("", outcome), SizeTotals("?", outcome)),
    )
    report = SpendReport(AT, summary, summary, (DayTotals("2026-03-04", totals),))
    key_reports = (
        KeyReport("sk-or-…aaaa", KeyInfo("team", 10, 3.5, 2.5, 0.5, True)),
        KeyReport("sk-or-…bbbb", KeyInfo(limit=10)),
        KeyReport("sk-or-…cccc", KeyInfo()),
        KeyReport("sk-or-…dddd"),
    )
    return SpendStats(report, key_reports, SpendPolicy(1, 2, 0.5, 1.5, 10))


def _pool() -> list[KeyStatus]:
    return [
        KeyStatus("sk-or-…aaaa", KeyState.OK, None, 3, 1, 1, ""),
        KeyStatus("sk-or-…bbbb", KeyState.COOLING_DOWN, AT, 0, 2, 0, "rate limited"),
        KeyStatus("sk-or-…cccc", KeyState.OUT_OF_CREDITS, AT, 0, 1, 0, "out of credits"),
        KeyStatus("sk-or-…dddd", KeyState.INVALID, None, 0, 1, 0, "invalid"),
        KeyStatus("sk-or-…eeee", KeyState.UNTESTED, None, 0, 2, 0, "failure"),
        KeyStatus("sk-or-…ffff", KeyState.UNTESTED, None, 0, 0, 0, ""),
    ]


def _models() -> list[ModelSummary]:
    price = ModelPrice(0.0000003, 0.0000025, None, 0.00006, 0.03)
    return [
        ModelSummary(
            "google/gemini-3.1-flash-image-preview",
            "Nano Banana 2",
            ImageCapabilities(("1K", "2K", "4K"), ("1:1", "1:4", "4:1")),
            True,
            price,
            "google/gemini-3.1-flash-image",
        ),
        ModelSummary("m/b", "", ImageCapabilities((), ("1:1",)), False, None),
        ModelSummary("m/c", "", ImageCapabilities(None, None), None, ModelPrice()),
        ModelSummary(
            "m/seedream",
            "Seedream",
            ImageCapabilities(("2K", "4K"), ("1:1",)),
            True,
            None,
            api=IMAGES_API,
            image_prices=(("2K", 0.04), ("4K", 0.06)),
        ),
        ModelSummary(
            "m/flat",
            "",
            ImageCapabilities(None, None),
            True,
            None,
            api=IMAGES_API,
            image_prices=(("", 0.035),),
        ),
        ModelSummary(
            "m/tokens",
            "",
            ImageCapabilities(None, None),
            True,
            None,
            api=IMAGES_API,
            per_token=True,
        ),
    ]


# Every other wording function, each called the way its caller calls it.
TEXTS = {
    "progress": lambda lang: [replies.progress(lang, a) for a in ("draw", "edit", "figure")],
    "still working": lambda lang: [replies.still_working(lang)],
    "tool summary": lambda lang: [replies.tool_summary(lang, o) for o in _outcomes()],
    "command reply": lambda lang: [t for o in _outcomes() for t in replies.command_reply(lang, o)],
    "help": lambda lang: [
        help.help_text(lang, _settings(), "/"),
        help.help_text(lang, _settings(translate_prompt=False), ""),
        help.usage_draw(lang),
        help.usage_edit(lang),
    ],
    "settings": lambda lang: [
        admin.describe_settings(lang, _settings(reply_lang=r)) for r in ("zh", "en", "auto")
    ],
    "admin replies": lambda lang: [
        admin.current_api_base(lang, "https://openrouter.ai/api"),
        admin.setting_saved(lang, admin.model_switched(lang, "m/a")),
        admin.setting_not_saved(
            lang, admin.api_base_switched(lang, "https://x/api", False), e.ConfigSaveError()
        ),
        admin.api_base_switched(lang, "https://openrouter.ai/api", True),
    ],
    "key pool": lambda lang: [
        keys.format_pool_status(lang, _pool(), "m/a"),
        keys.format_pool_status(lang, []),
    ],
    "model list": lambda lang: [
        models.image_model_list(lang, _models(), "m/b", True, limit=2),
        models.image_model_list(lang, _models(), "m/b", False),
    ],
    "statistics": lambda lang: [
        spend.stats_text(lang, _report()),
        spend.stats_text(lang, SpendStats(None, None, SpendPolicy())),
        spend.format_report(lang, _report().report, None, SpendPolicy()),
        spend.format_report(lang, _report().report, [], SpendPolicy()),
    ],
}


@pytest.mark.parametrize("name", TEXTS)
def test_each_text_in_both_languages(name):
    chinese, english = TEXTS[name](ZH), TEXTS[name](EN)
    for zh_text, en_text in zip(chinese, english, strict=True):
        assert CJK.search(zh_text), zh_text
        assert en_text and not CJK.search(en_text), en_text
        assert _numbers(zh_text) == _numbers(en_text), (zh_text, en_text)
        # Line for line, but for the Chinese help's extra line naming the English commands.
        extra = 1 if name == "help" and "英文指令名" in zh_text else 0
        assert zh_text.count("\n") == en_text.count("\n") + extra, (zh_text, en_text)


@pytest.mark.parametrize("lang", [ZH, EN], ids=["zh", "en"])
def test_money_never_comes_with_a_dollar_sign(lang):
    """WebChat renders Markdown with maths: two `$` in one paragraph become a formula."""
    written = [user_message(lang, f) for f in FAILURES]
    written.append(models.price_text(lang, ModelPrice(3e-7, 2.5e-6, None, 6e-5, 0.03)))
    policy = SpendPolicy(user_daily_budget_usd=0.5, group_daily_budget_usd=1, daily_budget_usd=5)
    written.append(spend.caps_line(lang, policy))
    assert [t for t in written if "$" in t] == []
    assert all(("美元" if lang is ZH else "USD ") in t for t in written[-2:])


# A line WebChat's Markdown would start an ordered or bullet list with: "1." pulls the lines
# after it into its item.
LIST_ITEM = re.compile(r"^ {0,3}(\d+[.)]|[-*+]) ", re.MULTILINE)


@pytest.mark.parametrize("lang", [ZH, EN], ids=["zh", "en"])
def test_the_key_pool_makes_no_markdown_list(lang):
    text = keys.format_pool_status(lang, _pool(), "m/a")
    assert LIST_ITEM.findall(text) == [], text
    numbered = [line.split(" | ")[0] for line in text.splitlines()[1:3]]
    expected = (
        ["1、sk-or-…aaaa", "2、sk-or-…bbbb"] if lang is ZH else ["#1 sk-or-…aaaa", "#2 sk-or-…bbbb"]
    )
    assert numbered == expected
