"""The README is the admins' manual: every config key and every command must be in it."""

from __future__ import annotations

import json

from tests.support.harness import REPO_ROOT
from utils.chat import commands

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_every_config_key_is_documented():
    schema = json.loads((REPO_ROOT / "_conf_schema.json").read_text(encoding="utf-8"))
    missing = [key for key in schema if f"`{key}`" not in README]
    assert missing == []


def test_every_command_is_documented():
    names = [v for k, v in vars(commands).items() if k.startswith("CMD_")]
    assert len(names) >= 8
    missing = [name for name in names if f"/{name}" not in README]
    assert missing == []


def test_every_config_key_has_a_chinese_description_and_hint():
    schema = json.loads((REPO_ROOT / "_conf_schema.json").read_text(encoding="utf-8"))
    for key, field in schema.items():
        assert any("\u4e00" <= ch <= "\u9fff" for ch in field["description"]), key
        assert field.get("hint"), key
