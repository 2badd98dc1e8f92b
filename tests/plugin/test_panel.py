"""The config panel's definition: _conf_schema.json loads on every supported AstrBot (with the
`secret` flag 4.28+ reads and older releases ignore), and the English texts of
.astrbot-plugin/i18n/en-US.json name and explain exactly the fields the schema has.

How the panel looks is tests/plugin/test_dashboard_browser.py (main leg only)."""

from __future__ import annotations

import json
import re

import yaml

from tests.support.harness import REPO_ROOT
from tests.support.schema import I18N_DIR, defaults, fields, load_i18n, load_schema, sections

CJK = re.compile(r"[\u4e00-\u9fff]")
SECRET_KEYS = {"openrouter_api_keys", "openrouter_api_key", "nap_transfer_token"}


def test_key_fields_are_secret():
    secret = {f.key for f in fields(load_schema()) if f.spec.get("secret")}
    assert secret == SECRET_KEYS
    # AstrBot masks string and list fields only.
    assert {f.spec["type"] for f in fields(load_schema()) if f.key in SECRET_KEYS} <= {
        "string",
        "list",
    }


async def test_astrbot_loads_the_schema_with_its_sections_and_secret_flags(astrbot, tmp_path):
    """AstrBot's own config loader (what its plugin manager runs), on whichever leg this is:
    on 4.14.6 the unknown `secret` and `labels` flags must not stop it."""
    from astrbot.core.config.astrbot_config import AstrBotConfig

    schema = load_schema()
    path = tmp_path / "fresh_config.json"
    config = AstrBotConfig(config_path=str(path), schema=schema)
    assert dict(config) == defaults(schema)
    assert json.loads(path.read_text(encoding="utf-8-sig")) == defaults(schema)
    # The plugin as AstrBot (re)loads it from its config file gets the same layout; keys the
    # schema does not declare (tests set flat ones on the live config) are dropped on load.
    loaded = (await astrbot.reload()).config
    assert list(loaded) == list(schema)
    for name, spec in sections(schema).items():
        assert list(loaded[name]) == list(spec["items"]), name


def test_english_texts_cover_exactly_the_schema():
    schema = load_schema()
    english = load_i18n("en-US")
    assert set(english) == {"metadata", "config"}
    config = english["config"]

    def keys(node: dict) -> dict:
        return {k: keys(v) for k, v in node.items() if k not in ("description", "hint", "labels")}

    def schema_keys(node: dict) -> dict:
        return {
            k: schema_keys(v["items"]) if v["type"] == "object" else {} for k, v in node.items()
        }

    # The same keys at every level: nothing missing, nothing left over from an old layout.
    assert keys(config) == schema_keys(schema)
    entries = [*(config[name] for name in sections(schema))]
    entries += [config[f.section][f.key] if f.section else config[f.key] for f in fields(schema)]
    for entry in entries:
        assert entry["description"] and not CJK.search(entry["description"]), entry
        assert entry["hint"], entry


def test_english_labels_match_the_options():
    schema = load_schema()
    config = load_i18n("en-US")["config"]
    with_options = [f for f in fields(schema) if "options" in f.spec]
    assert with_options
    for f in with_options:
        labels = (config[f.section] if f.section else config)[f.key]["labels"]
        assert len(labels) == len(f.spec["options"]) == len(f.spec["labels"]), f.path


def test_english_metadata():
    metadata = load_i18n("en-US")["metadata"]
    assert metadata["display_name"] == "Gemini 2.5 Image OpenRouter"
    assert metadata["desc"] and not CJK.search(metadata["desc"])


def test_the_english_description_names_what_the_chinese_one_does():
    """metadata.yaml's desc (the plugin card in Chinese) and its English side in the i18n file:
    the same models and sizes, and the same features (by their key words)."""
    chinese = yaml.safe_load((REPO_ROOT / "metadata.yaml").read_text(encoding="utf-8"))["desc"]
    english = load_i18n("en-US")["metadata"]["desc"]
    models = re.compile(r"\d(?:\.\d)? (?:Flash|Pro) Image")
    assert models.findall(english) == models.findall(chinese)
    assert len(models.findall(chinese)) == 3
    assert "2K/4K" in chinese and "2K/4K" in english
    features = {
        "参考图": "reference pictures",
        "头像": "avatars",
        "多密钥轮换": "several keys",
        "流式": "streamed",
        "每日上限": "daily caps",
        "花费统计": "spend statistics",
        "NapCat": "NapCat",
    }
    for zh, en in features.items():
        assert zh in chinese and en in english, zh


def test_locale_files_are_named_as_the_panel_names_its_languages():
    # AstrBot's web panel offers zh-CN, en-US, ru-RU and ja-JP; zh-CN falls back to the schema.
    assert sorted(p.name for p in I18N_DIR.iterdir()) == ["en-US.json"]


# What the panel would show as markup rather than text: AstrBot's dashboard renders the schema's
# `obvious_hint` flag as a "‼️" before the hint (two exclamation marks without an emoji font),
# and puts hints in as HTML in one place.
MARKUP = re.compile(r"‼|!!|\*\*|`|<[A-Za-z/][^>]*>|\[[^\]]*\]\(")


def _panel_texts() -> list[tuple[str, str]]:
    schema = load_schema()
    english = load_i18n("en-US")
    texts = []
    for name, spec in sections(schema).items():
        texts += [(name, spec["description"]), (name, spec["hint"])]
        texts += [
            (name, english["config"][name]["description"]),
            (name, english["config"][name]["hint"]),
        ]
    for f in fields(schema):
        en = english["config"][f.section][f.key] if f.section else english["config"][f.key]
        texts += [(f.path, f.spec["description"]), (f.path, f.spec.get("hint", ""))]
        texts += [(f.path, en["description"]), (f.path, en["hint"])]
        texts += [(f.path, label) for label in f.spec.get("labels", [])]
    texts.append(("metadata.desc (en-US)", english["metadata"]["desc"]))
    return texts


def test_no_stray_markup_in_what_the_panel_shows():
    assert [(where, text) for where, text in _panel_texts() if MARKUP.search(text)] == []
    assert [f.path for f in fields(load_schema()) if "obvious_hint" in f.spec] == []


def test_napcat_address_and_port_sit_right_below_the_delivery_group():
    """Top level (v1.8.1's files keep them there), but next to the settings they go with."""
    assert list(load_schema())[-3:] == ["delivery", "nap_server_address", "nap_server_port"]
    assert list(load_i18n("en-US")["config"])[-3:] == [
        "delivery",
        "nap_server_address",
        "nap_server_port",
    ]
