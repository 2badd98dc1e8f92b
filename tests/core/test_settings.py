"""Config keys of the generation core: defaults in the file AstrBot writes, lenient reading."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REAL_LOOKING_KEYS
from tests.support.schema import defaults, field, load_schema, sections
from utils.core.keys import mask_key
from utils.core.settings import SECTIONS, Settings

CORE_DEFAULTS = {
    "aspect_ratio": "",
    "max_reference_images": 4,
    "reference_image_max_side": 2048,
    "image_download_max_mb": 20,
    "image_download_timeout": 15,
    "image_retention_minutes": 15,
    "image_size": "",
    "send_image_max_mb": 5,
    "send_original_file": False,
}


_SECTION = {key: name for name, keys in SECTIONS.items() for key in keys}


def _config_file(astrbot) -> dict:
    path = astrbot.root / "data" / "config" / f"{astrbot.plugin_dir.name}_config.json"
    return json.loads(path.read_text(encoding="utf-8-sig"))


async def test_astrbot_writes_every_core_key_with_its_default(astrbot):
    written = _config_file(astrbot)
    for key, default in CORE_DEFAULTS.items():
        assert written[_SECTION[key]][key] == default, key


async def test_every_core_key_is_described_in_chinese(astrbot):
    schema = load_schema(astrbot.plugin_dir / "_conf_schema.json")
    for key in CORE_DEFAULTS:
        entry = field(schema, key).spec
        assert entry["default"] == CORE_DEFAULTS[key]
        for text in ("description", "hint"):
            assert any("\u4e00" <= ch <= "\u9fff" for ch in entry[text]), (key, text)


def test_defaults_when_keys_are_missing():
    settings = Settings.from_config({})
    assert settings.aspect_ratio == ""
    assert settings.max_reference_images == 4
    assert settings.reference_max_side == 2048
    assert settings.download_max_bytes == 20 * 1024 * 1024
    assert settings.download_timeout == 15.0
    assert settings.retention_seconds == 15 * 60
    assert settings.image_size == ""
    assert settings.send_image_max_bytes == 5 * 1024 * 1024
    assert settings.send_original_file is False


@pytest.mark.parametrize(
    ("config", "field", "expected"),
    [
        ({"max_reference_images": "abc"}, "max_reference_images", 4),
        ({"max_reference_images": 0}, "max_reference_images", 1),
        ({"max_reference_images": "8"}, "max_reference_images", 8),
        ({"reference_image_max_side": 10}, "reference_max_side", 256),
        ({"reference_image_max_side": 99999}, "reference_max_side", 4096),
        ({"image_download_max_mb": -3}, "download_max_bytes", 1024 * 1024),
        ({"image_download_timeout": "2.5"}, "download_timeout", 2.5),
        ({"image_download_timeout": "nan"}, "download_timeout", 15.0),
        ({"image_download_timeout": 0}, "download_timeout", 0.5),
        ({"image_retention_minutes": 0}, "retention_seconds", 60.0),
        ({"image_retention_minutes": None}, "retention_seconds", 900.0),
        ({"aspect_ratio": "16：9"}, "aspect_ratio", "16:9"),
        ({"aspect_ratio": "banana"}, "aspect_ratio", ""),
        ({"aspect_ratio": "1x8"}, "aspect_ratio", "1:8"),
        ({"image_size": "4k"}, "image_size", "4K"),
        ({"image_size": " 2K "}, "image_size", "2K"),
        ({"image_size": "8K"}, "image_size", ""),
        ({"send_image_max_mb": 0}, "send_image_max_bytes", 1024 * 1024),
        ({"send_image_max_mb": "12"}, "send_image_max_bytes", 12 * 1024 * 1024),
        ({"send_image_max_mb": "lots"}, "send_image_max_bytes", 5 * 1024 * 1024),
        ({"send_original_file": "true"}, "send_original_file", True),
    ],
)
def test_values_are_read_leniently_and_clamped(config, field, expected):
    assert getattr(Settings.from_config(config), field) == expected


# ---------------------------------------------------------------- layout of the config

# The keys of v1.8.1 (the release users run today) and the older single key: they stay at the
# top level, where the config files of those users hold them.
V181_KEYS = (
    "openrouter_api_keys",
    "openrouter_api_key",
    "model_name",
    "max_retry_attempts",
    "custom_api_base",
    "nap_server_address",
    "nap_server_port",
)


def test_settings_know_every_section_of_the_schema():
    schema = load_schema()
    assert {name: tuple(spec["items"]) for name, spec in sections(schema).items()} == dict(SECTIONS)


def test_v181_keys_stay_at_the_top_level():
    schema = load_schema()
    top_level = [key for key, spec in schema.items() if spec["type"] != "object"]
    assert set(V181_KEYS) == set(top_level)


async def test_a_v181_config_file_keeps_its_values_after_the_upgrade(astrbot, tmp_path):
    """AstrBot's own loader (what it runs for every plugin with a schema) on a v1.8.1 file."""
    from astrbot.core.config.astrbot_config import AstrBotConfig

    v181 = {
        "openrouter_api_keys": ["sk-or-v1-" + "a" * 64, "sk-or-v1-" + "b" * 64],
        "model_name": "google/gemini-3-pro-image-preview",
        "max_retry_attempts": 5,
        "custom_api_base": "https://gateway.example/api",
        "nap_server_address": "napcat",
        "nap_server_port": 4000,
    }
    path = tmp_path / "plugin_config.json"
    path.write_text(json.dumps(v181), encoding="utf-8-sig")

    config = AstrBotConfig(config_path=str(path), schema=load_schema())

    settings = Settings.from_config(config)
    assert settings.api_keys == tuple(v181["openrouter_api_keys"])
    assert settings.model == v181["model_name"]
    assert settings.max_retry_attempts == 5
    assert settings.api_base == "https://gateway.example/api"
    assert (settings.nap_server_address, settings.nap_server_port) == ("napcat", 4000)
    # The file now has every section, filled with defaults, beside the old values.
    written = json.loads(path.read_text(encoding="utf-8-sig"))
    assert written == {**defaults(load_schema()), **v181}


def test_sectioned_values_are_read():
    settings = Settings.from_config(
        {
            "timeouts": {"read_timeout_seconds": 42},
            "images": {"max_reference_images": 7, "aspect_ratio": "16:9"},
            "translation": {"translate_prompt": False, "translate_timeout": 2},
            "limits": {"group_allowlist": ["123"], "user_requests_per_minute": 3},
            "delivery": {"nap_transfer_token": "tok", "use_file_service": True},
        }
    )
    assert settings.read_timeout_seconds == 42
    assert (settings.max_reference_images, settings.aspect_ratio) == (7, "16:9")
    assert (settings.translate_prompt, settings.translate_timeout) == (False, 2)
    assert settings.limits.group_allowlist == frozenset({"123"})
    assert settings.limits.user_per_minute == 3
    assert (settings.nap_transfer_token, settings.use_file_service) == ("tok", True)


def test_a_flat_key_still_counts_and_wins_over_its_section():
    """Callers that set the flat layout (v2 before the sections) keep working."""
    config = {"images": {"max_reference_images": 7}, "max_reference_images": 2}
    assert Settings.from_config(config).max_reference_images == 2
    assert Settings.from_config({"translate_prompt": False}).translate_prompt is False
    # A section that is not an object (a hand-edited file) is ignored, not an error.
    assert Settings.from_config({"images": "oops"}).max_reference_images == 4


def test_repr_shows_no_key_and_no_secret():
    """loguru prints the values of local variables in the tracebacks it logs: a Settings
    there must show its keys masked, its transfer token and proxy password not at all."""
    keys = REAL_LOOKING_KEYS[:2]
    settings = Settings.from_config(
        {
            "openrouter_api_keys": list(keys),
            "nap_transfer_token": "napcat-secret-token",
            "translate_proxy": "http://proxyuser:proxy-password@10.0.0.1:7890",
        }
    )
    assert settings.api_keys == keys and settings.nap_transfer_token
    text = repr(settings)
    for secret in (*keys, "napcat-secret-token", "proxy-password", "proxyuser"):
        assert secret not in text
    assert all(mask_key(key) in text for key in keys)
    assert "10.0.0.1:7890" in text and "model=" in text
