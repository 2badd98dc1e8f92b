"""What differs between the AstrBot releases the suite runs on: 4.29.3 (Python 3.12, `make test`)
and 4.14.6 (the newest for Python 3.10/3.11, `make test-compat`).

Only the test harness adapts here, to AstrBot's own API and CLI; where the PLUGIN behaves
differently, the plugin is fixed instead. Features are detected from the installed AstrBot
package (its files and CLI options) rather than from version numbers, so a release in between
gets the right behaviour without a table of versions. Nothing here imports `astrbot.core`
(which opens the database of ASTRBOT_ROOT on import).

`astrbot run` on 4.14.6 without a terminal (CI, a test's subprocess):
- the wheel carries no web UI; `run` (and `init`) find no `data/dist/assets/version` and ask
  with click.confirm whether to download it, which aborts when stdin is not a TTY (and the
  download needs the network). A version file naming a release >= the installed one makes both
  skip the question: `prepare_root()` writes it. The dashboard API works without the UI files.
- `astrbot init` has no `-y`; it asks before creating the `.astrbot` marker, so
  `prepare_root()` creates the marker too and `init_command()` leaves `-y` out.
- DASHBOARD_HOST and ASTRBOT_DASHBOARD_INITIAL_PASSWORD are ignored: the dashboard listens on
  0.0.0.0 with the password "astrbot" unless data/cmd_config.json says otherwise, so
  `dashboard_config()` puts host and password there (DASHBOARD_PORT is honoured by both).
- the login form sends the md5 hex of the password, and the server compares it as stored:
  `login_password()`.
WebChat on 4.14.6 streams an image as `{"type": "image", "data": "[IMAGE]<file>"}` but no
`attachment_saved` event: its web UI fetches `/api/chat/get_file?filename=<file>`, a `.jpg` even
when it holds PNG bytes (compare bytes, not names). Its log lines are Chinese where 4.29.3's are
English. Also on 4.14.6: a chat provider needs "tool_use" in `modalities` to be offered tools;
every item a generator tool yields is processed (4.29.3 keeps only the last).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import re
from pathlib import Path
from typing import Any

ASTRBOT_VERSION = importlib.metadata.version("astrbot")


def _version_tuple(version: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in version.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


ASTRBOT_VERSION_INFO = _version_tuple(ASTRBOT_VERSION)


def _package_dir() -> Path:
    spec = importlib.util.find_spec("astrbot")  # finds without importing
    if spec is None or spec.origin is None:
        raise RuntimeError("astrbot is not installed in this interpreter")
    return Path(spec.origin).parent


ASTRBOT_PACKAGE_DIR = _package_dir()


def bundles_web_ui() -> bool:
    """4.29.3's wheel ships the dashboard's web UI; 4.14.6 downloads it on first run."""
    return (ASTRBOT_PACKAGE_DIR / "dashboard" / "dist" / "index.html").is_file()


def hashes_password_in_browser() -> bool:
    """4.14.6's login form sends md5(password), compared as stored; 4.29.3 sends the password
    and verifies it against a salted hash (astrbot/core/utils/auth_password.py)."""
    return not (ASTRBOT_PACKAGE_DIR / "core" / "utils" / "auth_password.py").is_file()


def login_password(password: str) -> str:
    """What the dashboard's login form posts as `password` for this password."""
    if hashes_password_in_browser():
        return hashlib.md5(password.encode()).hexdigest()
    return password


def init_command() -> list[str]:
    """Arguments of `astrbot init` that ask nothing (after `prepare_root()`). Read from the
    CLI's source: importing astrbot.cli on 4.14.6 imports astrbot.core."""
    source = (ASTRBOT_PACKAGE_DIR / "cli" / "commands" / "cmd_init.py").read_text(encoding="utf-8")
    return ["init", "-y"] if '"--yes"' in source else ["init"]


def prepare_root(root: Path) -> None:
    """Make `root` a directory `astrbot init` and `astrbot run` accept without a terminal."""
    root.mkdir(parents=True, exist_ok=True)
    (root / ".astrbot").touch()
    for sub in ("config", "plugins", "temp"):
        (root / "data" / sub).mkdir(parents=True, exist_ok=True)
    if not bundles_web_ui():
        version_file = root / "data" / "dist" / "assets" / "version"
        version_file.parent.mkdir(parents=True, exist_ok=True)
        version_file.write_text(f"v{ASTRBOT_VERSION}\n", encoding="utf-8")


def dashboard_config(*, host: str, password: str) -> dict[str, Any]:
    """The `dashboard` part of a seeded data/cmd_config.json (merged into AstrBot's defaults).

    4.29.3 takes host and initial password from the environment (DASHBOARD_HOST,
    ASTRBOT_DASHBOARD_INITIAL_PASSWORD) and stores a salted hash itself; 4.14.6 reads both from
    here, the password as its md5 hex."""
    config: dict[str, Any] = {"host": host}
    if hashes_password_in_browser():
        config["password"] = login_password(password)
    return config


@functools.cache
def webchat_streams_attachment_ids() -> bool:
    """4.29.3's WebChat stream announces each saved image as an `attachment_saved` event."""
    needle = b"attachment_saved"
    return any(
        needle in path.read_bytes() for path in (ASTRBOT_PACKAGE_DIR / "dashboard").rglob("*.py")
    )


def count_plugin_terminations(log: str, plugin: str) -> int:
    """How often the server log says it terminated `plugin` (unload, reload, shutdown)."""
    pattern = re.compile(rf"(?:Terminating plugin|正在终止插件) {re.escape(plugin)}\b")
    return len(pattern.findall(log))


def zip_install_names_dir_from_metadata() -> bool:
    """4.29.3 unpacks an uploaded plugin zip into data/plugins/<metadata.yaml name>; 4.14.6
    names the directory after the zip FILE (lower case, "-main"/"-master" removed)."""
    source = ASTRBOT_PACKAGE_DIR / "core" / "star" / "star_manager.py"
    return "_get_plugin_dir_name_from_metadata" in source.read_text(encoding="utf-8")


def zip_install_installs_requirements() -> bool:
    """4.29.3 pip-installs a zip-installed plugin's missing requirements before loading it;
    4.14.6 runs pip only when importing the plugin raises ImportError, so a requirement the
    plugin imports lazily (inside a function) is never installed there."""
    source = ASTRBOT_PACKAGE_DIR / "core" / "star" / "star_manager.py"
    return "_ensure_plugin_requirements" in source.read_text(encoding="utf-8")


def loads_plugin_i18n() -> bool:
    """4.29.3 hands a plugin's `.astrbot-plugin/i18n/<locale>.json` to the web panel (as the
    plugin's `i18n`); 4.14.6 knows no plugin i18n and shows the schema's own texts."""
    source = ASTRBOT_PACKAGE_DIR / "core" / "star" / "star_manager.py"
    return ".astrbot-plugin" in source.read_text(encoding="utf-8")


@functools.cache
def keeps_tool_timeout_in_agent_runner() -> bool:
    """4.28+ reads the tool-call timeout from agent_runner.config.misc (and migrates the old
    provider_settings key away); earlier releases read provider_settings.tool_call_timeout."""
    source = (ASTRBOT_PACKAGE_DIR / "core" / "config" / "default.py").read_text(encoding="utf-8")
    return "agent_runner.config.misc.tool_call_timeout" in source


def tool_timeout_config(seconds: int) -> dict[str, Any]:
    """The part of a seeded data/cmd_config.json that sets AstrBot's tool-call timeout."""
    if keeps_tool_timeout_in_agent_runner():
        return {"agent_runner": {"config": {"misc": {"tool_call_timeout": seconds}}}}
    return {"provider_settings": {"tool_call_timeout": seconds}}


def webchat_keeps_later_messages() -> bool:
    """4.28+ WebChat stores a message sent to a session with no open stream in its history (the
    web UI shows it there); 4.14.6 only queues it for a stream that may no longer exist."""
    adapter = (
        ASTRBOT_PACKAGE_DIR / "core" / "platform" / "sources" / "webchat" / "webchat_adapter.py"
    )
    return "_save_proactive_message" in adapter.read_text(encoding="utf-8")
