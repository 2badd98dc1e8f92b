"""The README is the admins' manual: every config key and every command must be in it."""

from __future__ import annotations

import re

from tests.support.harness import REPO_ROOT
from tests.support.schema import fields, load_schema, sections
from utils.chat.texts import command_names

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_config_key_is_documented():
    schema = load_schema()
    names = [*sections(schema), *(f.key for f in fields(schema))]
    missing = [name for name in names if f"`{name}`" not in README]
    assert missing == []


def test_config_tables_follow_the_panel_order():
    """The README's tables list the fields in the order the panel shows them."""
    config_section = README[README.index("\n## 配置\n") : README.index("\n## 使用\n")]
    documented = re.findall(r"^\| `(\w+)` \|", config_section, flags=re.MULTILINE)
    assert documented == [f.key for f in fields(load_schema())]


def test_every_command_is_documented():
    """Every name of every command, Chinese and English, in the README."""
    names = [name for command in command_names.ALL for name in command.names]
    assert len(names) >= 18
    missing = [name for name in names if not re.search(rf"/{re.escape(name)}(?!\w)", README)]
    assert missing == []


def test_every_config_key_has_a_chinese_description_and_hint():
    schema = load_schema()
    entries = [*sections(schema).items(), *((f.path, f.spec) for f in fields(schema))]
    for path, spec in entries:
        assert CJK.search(spec["description"]), path
        assert CJK.search(spec.get("hint", "")), path


def test_list_hints_match_the_list_editor():
    """A list field is edited item by item in the panel, not as lines of text."""
    for f in fields(load_schema()):
        if f.spec["type"] == "list":
            assert "每行" not in f.spec["hint"] and "每项" in f.spec["hint"], f.path
