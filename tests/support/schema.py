"""_conf_schema.json as the tests read it: top-level fields and sections (`"type": "object"`)
whose items the panel shows as one group."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "_conf_schema.json"
I18N_DIR = REPO_ROOT / ".astrbot-plugin" / "i18n"


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Field:
    key: str
    section: str | None  # None for a top-level field
    spec: dict[str, Any]

    @property
    def path(self) -> str:
        """The dotted path AstrBot's panel (and its plugin i18n) names the field by."""
        return f"{self.section}.{self.key}" if self.section else self.key


def fields(schema: Mapping[str, Mapping[str, Any]]) -> Iterator[Field]:
    """Every editable field in panel order, sections' items in place of the section."""
    for key, spec in schema.items():
        if spec["type"] == "object":
            for item_key, item in spec["items"].items():
                yield Field(item_key, key, dict(item))
        else:
            yield Field(key, None, dict(spec))


def sections(schema: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return {key: dict(spec) for key, spec in schema.items() if spec["type"] == "object"}


def defaults(schema: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The config AstrBot writes for a fresh install (sections become nested objects)."""
    return {
        key: defaults(spec["items"]) if spec["type"] == "object" else spec.get("default")
        for key, spec in schema.items()
    }


def lookup(config: Mapping[str, Any], path: str) -> Any:
    """A value of a loaded config by its dotted path."""
    value: Any = config
    for part in path.split("."):
        value = value[part]
    return value


def load_i18n(locale: str) -> dict[str, Any]:
    return json.loads((I18N_DIR / f"{locale}.json").read_text(encoding="utf-8"))


def field(schema: Mapping[str, Mapping[str, Any]], key: str) -> Field:
    """The field named `key`, at the top level or in its section."""
    [found] = [f for f in fields(schema) if f.key == key]
    return found


def laid_out(values: Mapping[str, Any], schema: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A fresh install's config with `values` (flat keys, or whole sections) put where the
    schema keeps them: a config file must use the schema's layout, because AstrBot drops every
    key its schema does not declare when it loads the file."""
    config = defaults(schema)
    home = {f.key: f.section for f in fields(schema)}
    for key, value in values.items():
        section = home.get(key)
        if section:
            config[section][key] = value
        elif isinstance(value, Mapping) and key in sections(schema):
            config[key].update(value)
        else:
            config[key] = value
    return config
