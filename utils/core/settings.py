"""Typed view of the plugin configuration (the dict AstrBot builds from _conf_schema.json)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from .coerce import coerce_bool
from .image_options import normalize_aspect_ratio, normalize_image_size
from .keys import collect_api_keys, mask_key

DEFAULT_API_BASE = "https://openrouter.ai/api"
DEFAULT_MODEL = "google/gemini-2.5-flash-image"
DEFAULT_NAP_PORT = 3658
# Translation is a nicety: a slow translator must not eat into the image request's time.
DEFAULT_TRANSLATE_TIMEOUT = 5.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
# OpenRouter answers a streamed request with headers at once; a relay that answers plain JSON
# only when the picture is done needs more (or 0: no first-byte deadline).
DEFAULT_FIRST_BYTE_TIMEOUT = 60.0
DEFAULT_MAX_REFERENCE_IMAGES = 4
DEFAULT_REFERENCE_MAX_SIDE = 2048
DEFAULT_DOWNLOAD_MAX_MB = 20
DEFAULT_DOWNLOAD_TIMEOUT = 15.0
DEFAULT_RETENTION_MINUTES = 15
# QQ's public avatar link; s=640 is the largest size it serves.
DEFAULT_AVATAR_URL_TEMPLATE = "https://q1.qlogo.cn/g?b=qq&nk={user_id}&s=640"
# Pictures above this go out as a JPEG re-encode. AstrBot's QQ adapter inlines every image as
# base64 into NapCat's websocket; pictures above ~5 MB often time out or fail with "rich media
# transfer failed" (NapCat / NcatBot reports, 2025-2026), while a 4096x4096 JPEG of quality 85-90
# fits 5 MB. See README "大图片与 4K".
DEFAULT_SEND_IMAGE_MAX_MB = 5
_MIB = 1024 * 1024
# `reply_lang`: the language of everything the plugin says (utils/chat/texts/language.py).
REPLY_LANGS = ("zh", "en", "auto")


# What may separate group ids typed into one string (input vocabulary: the full-width comma of
# a Chinese keyboard too).
_ID_SEPARATORS = re.compile(r"[,，\r\n]")


def clean_ids(values: object) -> frozenset[str]:
    """Group ids from a config list (or a comma/newline separated string), as stripped strings."""
    if isinstance(values, str):
        items: Iterable[object] = _ID_SEPARATORS.split(values)
    elif isinstance(values, Iterable):
        items = values
    else:
        return frozenset()
    return frozenset(s for s in (str(v).strip() for v in items if v is not None) if s)


@dataclass(frozen=True)
class LimitPolicy:
    user_per_minute: int = 0  # 0 = no limit
    group_per_minute: int = 0
    group_allowlist: frozenset[str] = frozenset()  # empty = every group
    group_denylist: frozenset[str] = frozenset()


DEFAULT_LEDGER_RETENTION_DAYS = 30


@dataclass(frozen=True)
class SpendPolicy:
    """Daily caps (0 = no cap), counted per local calendar day, and how long the ledger keeps."""

    user_daily_limit: int = 0  # pictures per user per day
    group_daily_limit: int = 0  # pictures per group per day
    user_daily_budget_usd: float = 0.0
    group_daily_budget_usd: float = 0.0
    daily_budget_usd: float = 0.0  # the whole bot
    caps_apply_to_admins: bool = False
    ledger_retention_days: int = DEFAULT_LEDGER_RETENTION_DAYS

    @property
    def any_budget(self) -> bool:
        """A cap on money (the ones a price estimate can be checked against)."""
        return any((self.user_daily_budget_usd, self.group_daily_budget_usd, self.daily_budget_usd))

    @property
    def any_cap(self) -> bool:
        return any(
            (
                self.user_daily_limit,
                self.group_daily_limit,
                self.user_daily_budget_usd,
                self.group_daily_budget_usd,
                self.daily_budget_usd,
            )
        )


def normalize_api_base(value: object) -> str:
    """Accept `https://host/api`, `https://host/api/v1` or a full endpoint; return the part before /v1."""
    base = str(value or "").strip().rstrip("/")
    if not base:
        return DEFAULT_API_BASE
    if "://" not in base:
        base = "https://" + base
    for suffix in ("/chat/completions", "/v1"):
        if base.endswith(suffix):
            base = base[: -len(suffix)].rstrip("/")
    return base


# Where _conf_schema.json keeps each setting that is not at the top level: the panel shows
# these sections as groups. The keys v1.8.1 had (API keys, model, API base, retries, NapCat
# host and port) stay at the top level so an upgrade keeps their values.
SECTIONS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "timeouts": (
            "request_timeout_budget_seconds",
            "connect_timeout_seconds",
            "first_byte_timeout_seconds",
            "read_timeout_seconds",
        ),
        "images": (
            "aspect_ratio",
            "image_size",
            "max_reference_images",
            "avatar_url_template",
            "reference_image_max_side",
            "image_download_max_mb",
            "image_download_timeout",
            "image_retention_minutes",
        ),
        "translation": (
            "reply_lang",
            "translate_prompt",
            "translate_timeout",
            "translate_proxy",
            "progress_message",
        ),
        "limits": (
            "user_requests_per_minute",
            "group_requests_per_minute",
            "group_allowlist",
            "group_denylist",
        ),
        "spend": (
            "user_daily_limit",
            "group_daily_limit",
            "user_daily_budget_usd",
            "group_daily_budget_usd",
            "daily_budget_usd",
            "caps_apply_to_admins",
            "ledger_retention_days",
        ),
        "delivery": (
            "send_image_max_mb",
            "send_original_file",
            "nap_transfer_token",
            "nap_transfer_timeout",
            "use_file_service",
        ),
    }
)
_SECTION_OF = MappingProxyType({key: name for name, keys in SECTIONS.items() for key in keys})


class ConfigView:
    """Reads a setting by its key wherever the config keeps it: its section, or the top level.

    A key at the top level wins. AstrBot drops the keys its schema does not declare when it
    loads the file, so in a loaded config a sectioned key is only ever in its section; a top
    level one comes from code that sets the flat layout (older callers, tests) on purpose.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._config = config

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._config:
            return self._config[key]
        section = self._config.get(_SECTION_OF.get(key, ""))
        if isinstance(section, Mapping) and key in section:
            return section[key]
        return default


def _as_int(value: object, default: int, low: int, high: int) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return default
    return min(max(number, low), high)


def _as_float(value: object, default: float, low: float, high: float) -> float:
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return default
    if number != number:  # NaN
        return default
    return min(max(number, low), high)


def _choice(value: object, choices: tuple[str, ...]) -> str:
    """One of `choices` (any case, spaces ignored); the first one for anything else."""
    text = str(value or "").strip().lower()
    return text if text in choices else choices[0]


@dataclass(frozen=True)
class Settings:
    api_keys: tuple[str, ...]
    model: str
    api_base: str
    max_retry_attempts: int
    nap_server_address: str
    nap_server_port: int
    nap_transfer_token: str = ""
    nap_transfer_timeout: float = 30.0
    use_file_service: bool = False
    translate_prompt: bool = True
    translate_timeout: float = DEFAULT_TRANSLATE_TIMEOUT
    translate_proxy: str = ""
    progress_message: bool = True
    limits: LimitPolicy = field(default_factory=LimitPolicy)
    # 0 = follow AstrBot's tool-call timeout (utils/chat/timing.run_budget).
    request_timeout_budget_seconds: float = 0.0
    connect_timeout_seconds: float = DEFAULT_CONNECT_TIMEOUT
    # How long a streamed request may wait for the first byte of its answer (the headers);
    # 0 = only the run's budget limits it.
    first_byte_timeout_seconds: float = DEFAULT_FIRST_BYTE_TIMEOUT
    read_timeout_seconds: float = DEFAULT_READ_TIMEOUT
    # '' = the model's default; otherwise one of aspect_ratio.ASPECT_RATIOS.
    aspect_ratio: str = ""
    max_reference_images: int = DEFAULT_MAX_REFERENCE_IMAGES
    reference_max_side: int = DEFAULT_REFERENCE_MAX_SIDE
    # Cap and time limit for every image we download (reference images, image URLs in answers).
    download_max_bytes: int = DEFAULT_DOWNLOAD_MAX_MB * _MIB
    download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT
    retention_seconds: float = DEFAULT_RETENTION_MINUTES * 60.0
    # QQ (aiocqhttp) avatars: `{user_id}` is replaced; '' switches avatars off.
    avatar_url_template: str = DEFAULT_AVATAR_URL_TEMPLATE
    spend: SpendPolicy = field(default_factory=SpendPolicy)
    # '' = the model's default; otherwise one of image_options.IMAGE_SIZES.
    image_size: str = ""
    send_image_max_bytes: int = DEFAULT_SEND_IMAGE_MAX_MB * _MIB
    # Also send the original as a file when a re-encode went out instead.
    send_original_file: bool = False
    # One of REPLY_LANGS: Chinese (the default), English, or chosen per message ("auto").
    reply_lang: str = REPLY_LANGS[0]

    def __repr__(self) -> str:
        """Every field, the keys masked and the secrets hidden: loguru prints the values of
        local variables in the tracebacks it logs."""
        shown: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["api_keys"] = tuple(mask_key(key) for key in self.api_keys)
        if self.nap_transfer_token:
            shown["nap_transfer_token"] = "…"
        if "@" in self.translate_proxy:  # user:password@host
            scheme, sep, rest = self.translate_proxy.partition("://")
            if not sep:
                scheme, rest = "", scheme
            shown["translate_proxy"] = f"{scheme}{sep}…@{rest.rpartition('@')[2]}"
        return f"Settings({', '.join(f'{name}={value!r}' for name, value in shown.items())})"

    @property
    def chat_completions_url(self) -> str:
        return f"{self.api_base}/v1/chat/completions"

    @property
    def models_url(self) -> str:
        return f"{self.api_base}/v1/models"

    @property
    def images_url(self) -> str:
        """OpenRouter's Image API (POST): the models added since 2026-06 are served only there."""
        return f"{self.api_base}/v1/images"

    @property
    def image_models_url(self) -> str:
        return f"{self.api_base}/v1/images/models"

    def image_endpoints_url(self, model: str) -> str:
        """The per-provider records (parameters, prices) of one Image API model."""
        return f"{self.image_models_url}/{model}/endpoints"

    @staticmethod
    def api_keys_of(config: Mapping[str, Any]) -> tuple[str, ...]:
        """Only the usable keys of a config: what the log filter needs on every record, without
        reading the whole config each time."""
        return collect_api_keys(
            config.get("openrouter_api_keys"), config.get("openrouter_api_key", "")
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        view = ConfigView(config)
        return cls(
            api_keys=Settings.api_keys_of(config),
            model=str(view.get("model_name") or "").strip() or DEFAULT_MODEL,
            api_base=normalize_api_base(view.get("custom_api_base")),
            max_retry_attempts=_as_int(view.get("max_retry_attempts"), 3, 1, 10),
            nap_server_address=str(view.get("nap_server_address") or "").strip(),
            nap_server_port=_as_int(view.get("nap_server_port"), DEFAULT_NAP_PORT, 1, 65535),
            nap_transfer_token=str(view.get("nap_transfer_token") or "").strip(),
            nap_transfer_timeout=float(_as_int(view.get("nap_transfer_timeout"), 30, 1, 300)),
            use_file_service=coerce_bool(view.get("use_file_service"), default=False),
            translate_prompt=coerce_bool(view.get("translate_prompt"), default=True),
            translate_timeout=_as_float(
                view.get("translate_timeout"), DEFAULT_TRANSLATE_TIMEOUT, 0.5, 30.0
            ),
            translate_proxy=str(view.get("translate_proxy") or "").strip(),
            progress_message=coerce_bool(view.get("progress_message"), default=True),
            limits=LimitPolicy(
                user_per_minute=_as_int(view.get("user_requests_per_minute"), 0, 0, 10_000),
                group_per_minute=_as_int(view.get("group_requests_per_minute"), 0, 0, 10_000),
                group_allowlist=clean_ids(view.get("group_allowlist")),
                group_denylist=clean_ids(view.get("group_denylist")),
            ),
            request_timeout_budget_seconds=_as_float(
                view.get("request_timeout_budget_seconds"), 0.0, 0, 3600
            ),
            connect_timeout_seconds=_as_float(
                view.get("connect_timeout_seconds"), DEFAULT_CONNECT_TIMEOUT, 1, 120
            ),
            first_byte_timeout_seconds=_as_float(
                view.get("first_byte_timeout_seconds"), DEFAULT_FIRST_BYTE_TIMEOUT, 0, 3600
            ),
            read_timeout_seconds=_as_float(
                view.get("read_timeout_seconds"), DEFAULT_READ_TIMEOUT, 1, 3600
            ),
            # An invalid value can only come from a hand-edited file: fall back to the model default.
            aspect_ratio=normalize_aspect_ratio(view.get("aspect_ratio")) or "",
            max_reference_images=_as_int(
                view.get("max_reference_images"), DEFAULT_MAX_REFERENCE_IMAGES, 1, 16
            ),
            reference_max_side=_as_int(
                view.get("reference_image_max_side"), DEFAULT_REFERENCE_MAX_SIDE, 256, 4096
            ),
            download_max_bytes=_as_int(
                view.get("image_download_max_mb"), DEFAULT_DOWNLOAD_MAX_MB, 1, 200
            )
            * _MIB,
            download_timeout=_as_float(
                view.get("image_download_timeout"), DEFAULT_DOWNLOAD_TIMEOUT, 0.5, 120.0
            ),
            retention_seconds=_as_int(
                view.get("image_retention_minutes"), DEFAULT_RETENTION_MINUTES, 1, 7 * 24 * 60
            )
            * 60.0,
            avatar_url_template=str(
                view.get("avatar_url_template", DEFAULT_AVATAR_URL_TEMPLATE) or ""
            ).strip(),
            spend=SpendPolicy(
                user_daily_limit=_as_int(view.get("user_daily_limit"), 0, 0, 1_000_000),
                group_daily_limit=_as_int(view.get("group_daily_limit"), 0, 0, 1_000_000),
                user_daily_budget_usd=_as_float(
                    view.get("user_daily_budget_usd"), 0.0, 0.0, 1_000_000.0
                ),
                group_daily_budget_usd=_as_float(
                    view.get("group_daily_budget_usd"), 0.0, 0.0, 1_000_000.0
                ),
                daily_budget_usd=_as_float(view.get("daily_budget_usd"), 0.0, 0.0, 1_000_000.0),
                caps_apply_to_admins=coerce_bool(view.get("caps_apply_to_admins"), default=False),
                ledger_retention_days=_as_int(
                    view.get("ledger_retention_days"), DEFAULT_LEDGER_RETENTION_DAYS, 1, 3650
                ),
            ),
            image_size=normalize_image_size(view.get("image_size")) or "",
            send_image_max_bytes=_as_int(
                view.get("send_image_max_mb"), DEFAULT_SEND_IMAGE_MAX_MB, 1, 100
            )
            * _MIB,
            send_original_file=coerce_bool(view.get("send_original_file"), default=False),
            reply_lang=_choice(view.get("reply_lang"), REPLY_LANGS),
        )
