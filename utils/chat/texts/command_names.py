"""The commands' names: the Chinese name each command is registered with, its English alias,
and older names kept working. A leaf module: utils/chat/commands.py (parsing), main.py
(registration) and the texts (help, usage lines) all import it."""

from __future__ import annotations

from dataclasses import dataclass

from .language import Lang


@dataclass(frozen=True)
class Command:
    zh: str  # the name AstrBot registers; shown in Chinese texts
    en: str  # the English alias; shown in English texts
    extra: tuple[str, ...] = ()  # more aliases, kept for users of older versions

    def __call__(self, lang: Lang) -> str:
        """The name the texts in `lang` show."""
        return self.zh if lang is Lang.ZH else self.en

    @property
    def aliases(self) -> set[str]:
        """What `filter.command(..., alias=...)` takes: every name but the registered one."""
        return {self.en, *self.extra}

    @property
    def names(self) -> tuple[str, ...]:
        return (self.zh, self.en, *self.extra)


DRAW = Command("画图", "draw")
EDIT = Command("改图", "edit")
FIGURE = Command("手办化", "figure")
HELP = Command("画图帮助", "draw_help")
MODEL = Command("画图模型", "draw_model")
API_BASE = Command("画图接口", "draw_api")
SETTINGS = Command("画图配置", "draw_config")
KEYS = Command("画图密钥", "draw_keys", ("gemini_keys",))
STATS = Command("画图统计", "draw_stats")

ALL = (DRAW, EDIT, FIGURE, HELP, MODEL, API_BASE, SETTINGS, KEYS, STATS)
