"""The test keys, and how tests tell them apart and check that none leaks."""

from __future__ import annotations

import re

REAL_LOOKING_KEYS = (
    "sk-or-v1-" + "a1" * 32,
    "sk-or-v1-" + "b2" * 32,
    "sk-or-v1-" + "c3" * 32,
)
LABEL = {key: "ABC"[i] for i, key in enumerate(REAL_LOOKING_KEYS)}


def sequence(fake) -> str:
    """The keys of the generation requests (either API) a FakeOpenRouter saw, in order, as
    letters."""
    return "".join(LABEL.get(r.key, "?") for r in fake.generation_requests())


def use_keys(config: dict, count: int) -> None:
    config["openrouter_api_keys"] = list(REAL_LOOKING_KEYS[:count])


def assert_no_key_leaked(*texts: str) -> None:
    for text in texts:
        for key in REAL_LOOKING_KEYS:
            assert key not in text
            assert key[9:30] not in text  # not even a chunk of the secret part


# The answer when the only key ran out of credits: when the pool asks the service again.
OUT_OF_CREDITS = re.compile(
    r"OpenRouter 账户额度已用完，请管理员充值或更换密钥；充值后可在 \d\d:\d\d:\d\d（约 60 秒后）再试。"
)
