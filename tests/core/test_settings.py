"""Config keys of the generation core: defaults in the file AstrBot writes, lenient reading."""

from __future__ import annotations

import json

import pytest

from utils.core.settings import Settings

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


def _config_file(astrbot) -> dict:
    path = astrbot.root / "data" / "config" / f"{astrbot.plugin_dir.name}_config.json"
    return json.loads(path.read_text(encoding="utf-8-sig"))


async def test_astrbot_writes_every_core_key_with_its_default(astrbot):
    written = _config_file(astrbot)
    for key, default in CORE_DEFAULTS.items():
        assert written[key] == default, key


async def test_every_core_key_is_described_in_chinese(astrbot):
    schema = json.loads((astrbot.plugin_dir / "_conf_schema.json").read_text(encoding="utf-8"))
    for key in CORE_DEFAULTS:
        entry = schema[key]
        assert entry["default"] == CORE_DEFAULTS[key]
        for field in ("description", "hint"):
            assert any("\u4e00" <= ch <= "\u9fff" for ch in entry[field]), (key, field)


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
