"""Chinese (CJK) -> English prompt translation through googletrans, never blocking generation.

Image models follow English prompts best, but text the user quotes is text they want drawn into
the picture: it is swapped for tokens before translation and put back afterwards. Every failure
(HTTP error, garbage answer, timeout, lost tokens) falls back to the original prompt; the caller
gets a `TranslationOutcome` saying what happened so it can log it.

A translator that keeps failing (Google unreachable, as from mainland China without a proxy)
is not asked again for a while: only the first prompt waits for its timeout, the next ones go
out as written until the pause ends (1 minute, doubling with each failure in a row up to 30).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from googletrans import Translator

from ..core.clock import SYSTEM_CLOCK, Clock
from ..core.tasks import cancel_and_wait

DEFAULT_SERVICE_URL = "translate.googleapis.com"
# Google's GET endpoint rejects very long URLs; such prompts are sent as they are.
MAX_TRANSLATE_CHARS = 4000
# After a failed call, how long translation rests; doubled per failure in a row, up to the max.
PAUSE_FIRST = 60.0
PAUSE_MAX = 30 * 60.0

# Han (with extensions and compatibility forms), kana and hangul.
_CJK = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    r"\u1100-\u11ff\u3130-\u318f\uac00-\ud7af\U00020000-\U0003134f]"
)
# Opening -> closing mark. The ASCII apostrophe is left out: it is mostly an apostrophe.
QUOTE_PAIRS: dict[str, str] = {
    '"': '"',
    "“": "”",
    "「": "」",
    "『": "』",
    "«": "»",
    "‘": "’",
}
_QUOTED = re.compile(
    "|".join(
        f"{re.escape(op)}[^{re.escape(cl)}]+?{re.escape(cl)}" for op, cl in QUOTE_PAIRS.items()
    )
)
# A token that machine translation leaves alone; matched leniently in case spaces creep in.
_TOKEN = "QZX{}"
_TOKEN_BACK = re.compile(r"Q\s*Z\s*X\s*(\d+)", re.IGNORECASE)


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


@dataclass(frozen=True)
class ProtectedPrompt:
    """The prompt with each quoted text replaced by a token, and the texts the tokens stand for."""

    text: str
    quoted: tuple[str, ...]


def protect_quotes(prompt: str) -> ProtectedPrompt:
    """Swap the inside of every quoted span for a token; the quote marks stay for context."""
    quoted: list[str] = []

    def swap(match: re.Match[str]) -> str:
        span = match.group(0)  # every mark is one character
        quoted.append(span[1:-1])
        return span[0] + _TOKEN.format(len(quoted) - 1) + span[-1]

    return ProtectedPrompt(_QUOTED.sub(swap, prompt), tuple(quoted))


def restore_quotes(translated: str, quoted: tuple[str, ...]) -> str | None:
    """Put the quoted texts back; None when a token was lost, duplicated or invented."""
    found = [int(m.group(1)) for m in _TOKEN_BACK.finditer(translated)]
    if sorted(found) != list(range(len(quoted))):
        return None
    return _TOKEN_BACK.sub(lambda m: quoted[int(m.group(1))], translated)


@dataclass(frozen=True)
class TranslationOutcome:
    """`text` is the prompt to send; `note` says why it is (or is not) translated, in English."""

    text: str
    translated: bool
    note: str
    failed: bool = False  # the translator was asked and let us down (vs. nothing to translate)
    # The service itself failed (no answer, an error): rest it for a while.
    paused_translator: bool = False


class PromptTranslator:
    """Owns one googletrans Translator (one HTTP client) per plugin instance.

    The client is created on first use and re-created only when the proxy or timeout changes;
    `close()` releases it. googletrans would swallow HTTP errors and hand back the input through
    a module-level object shared by all callers, so it runs with `raise_exception=True` and
    every error becomes a fallback here.
    """

    def __init__(self, service_url: str = DEFAULT_SERVICE_URL, clock: Clock = SYSTEM_CLOCK) -> None:
        self._service_url = service_url
        self._clock = clock
        self._failures = 0  # failed calls in a row
        self._resume_at = float("-inf")  # monotonic time from which translation is tried again
        self._translator: Translator | None = None
        self._options: tuple[str, float] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def paused_until(self) -> float | None:
        """The wall time from which translation is tried again; None when it is not paused."""
        left = self._resume_at - self._clock.monotonic()
        return self._clock.wall() + left if left > 0 else None

    def _failed(self) -> None:
        self._failures += 1
        pause = min(PAUSE_MAX, PAUSE_FIRST * 2 ** min(self._failures - 1, 16))
        self._resume_at = self._clock.monotonic() + pause

    def _client(self, proxy: str, timeout: float) -> Translator:
        if self._translator is None or self._options != (proxy, timeout):
            old = self._translator
            self._translator = Translator(
                service_urls=[self._service_url], raise_exception=True, proxy=proxy or None
            )
            # Set on its httpx client, which takes seconds (googletrans' own argument wants an
            # httpx.Timeout: httpx is not a requirement of ours).
            self._translator.client.timeout = timeout
            self._options = (proxy, timeout)
            if old is not None:
                # Requests still using the old client finish on their own deadline first.
                task = asyncio.get_running_loop().create_task(_close_later(old, timeout))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        return self._translator

    async def close(self) -> None:
        translator, self._translator, self._options = self._translator, None, None
        if translator is not None:
            await _close_quietly(translator)
        await cancel_and_wait(list(self._closing))

    async def translate(
        self, prompt: str, *, timeout: float, proxy: str = "", limit: float | None = None
    ) -> TranslationOutcome:
        """`timeout`: the configured wait for Google; `limit`: the time this request has left,
        when shorter. Running out of the request's time is not Google failing: no pause."""
        protected = protect_quotes(prompt)
        if not has_cjk(protected.text):
            note = "quoted text only" if protected.quoted and has_cjk(prompt) else "no CJK text"
            return TranslationOutcome(prompt, False, note)
        if len(prompt) > MAX_TRANSLATE_CHARS:
            return TranslationOutcome(prompt, False, f"too long to translate ({len(prompt)} chars)")
        left = self._resume_at - self._clock.monotonic()
        if left > 0:
            return TranslationOutcome(
                prompt,
                False,
                f"translation paused for {left:.0f}s more after {self._failures} failure(s) "
                "in a row",
                failed=True,
            )
        outcome = await self._call(prompt, protected, timeout, proxy, limit)
        if outcome.translated:
            self._failures = 0
        elif outcome.failed and outcome.paused_translator:
            self._failed()
        return outcome

    async def _call(
        self,
        prompt: str,
        protected: ProtectedPrompt,
        timeout: float,
        proxy: str,
        limit: float | None,
    ) -> TranslationOutcome:
        wait = timeout if limit is None else min(timeout, limit)
        try:
            translator = self._client(proxy, timeout)  # a malformed proxy fails here
            result = await asyncio.wait_for(
                translator.translate(protected.text, src="auto", dest="en"), wait
            )
            text = result.text
        except asyncio.TimeoutError:
            google_too_slow = wait >= timeout
            return TranslationOutcome(
                prompt,
                False,
                f"translation timed out after {wait:g}s"
                + ("" if google_too_slow else " (the time the request had left)"),
                failed=True,
                paused_translator=google_too_slow,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # googletrans raises bare Exception, httpx errors, parse errors
            reason = f"{type(exc).__name__}: {str(exc)[:200]}"
            password = urlsplit(proxy).password if "://" in proxy else None
            if password:
                reason = reason.replace(password, "***")
            return TranslationOutcome(
                prompt, False, f"translation failed: {reason}", failed=True, paused_translator=True
            )
        return _finish(prompt, protected, text)


def _finish(prompt: str, protected: ProtectedPrompt, text: object) -> TranslationOutcome:
    if not isinstance(text, str) or not text.strip():
        return TranslationOutcome(prompt, False, "translation came back empty", failed=True)
    text = text.strip()
    if text == protected.text.strip():
        return TranslationOutcome(prompt, False, "translation came back unchanged", failed=True)
    restored = restore_quotes(text, protected.quoted)
    if restored is None:
        return TranslationOutcome(
            prompt, False, "translation lost the quoted text markers", failed=True
        )
    return TranslationOutcome(restored, True, "translated")


async def _close_later(translator: Translator, delay: float) -> None:
    try:
        await asyncio.sleep(delay)
    finally:
        await _close_quietly(translator)


async def _close_quietly(translator: Translator) -> None:
    try:
        await translator.client.aclose()
    except Exception:  # closing is best effort; nothing a user could act on
        pass
