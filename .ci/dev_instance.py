"""`make run`'s helpers (.ci/astrbot-run.sh): the plugin's place in the dev root, its admins.

Standard library only; run with the project venv's Python.

    dev_instance.py mount <checkout> <root>/data/plugins/<name>
    dev_instance.py admins <root>/data/cmd_config.json

mount: AstrBot 4.29.3's page service resolves the plugin directory, its pages/ directory, a
page's directory and the file asked for, and requires each to lie inside the one above
(astrbot/dashboard/services/plugin_page_service.py). A symlink to the checkout resolves outside
data/plugins, so the dashboard listed no page. The plugin directory is therefore a real
directory holding a symlink to every entry of the checkout (edits stay live), except the page
directories: real directories whose files are hard links to the checkout's files (same inode:
an edit in place shows at once; an editor that replaces the file breaks the link until the next
`make run`, which lays everything out again). Across filesystems the page files are copied.

admins: the first dashboard login makes the admin choose a new user name, and the WebChat
sender id is that name, so it must be in `admins_id` for the plugin's admin commands. AstrBot
reads the file at start; this adds the dashboard user name to it before that.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

# Checkout entries the instance never needs (and must not see: its own root is .run/); the
# tests copy the plugin by the same list.
NOT_PLUGIN_FILES = Path(__file__).with_name("not-plugin-files")
# Directories AstrBot's page service resolves below the plugin root: real dirs, hard-linked files.
PAGE_DIRS = frozenset({"pages", "views"})
MARKER = ".make-run-mount"  # names the checkout a mounted plugin directory belongs to


def skipped_patterns() -> list[str]:
    lines = NOT_PLUGIN_FILES.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def wanted_entries(checkout: Path) -> list[Path]:
    skipped = skipped_patterns()
    return sorted(
        entry
        for entry in checkout.iterdir()
        if not any(fnmatch.fnmatch(entry.name, pattern) for pattern in skipped)
    )


def _remove(path: Path) -> None:
    """Remove a symlink, file or directory without following links out of the mount."""
    if path.is_symlink() or not path.is_dir():
        path.unlink()
    else:
        shutil.rmtree(path)


def _link_tree(source: Path, target: Path) -> None:
    """`target` as real directories whose files are hard links to `source`'s files."""
    target.mkdir()
    for entry in sorted(source.iterdir()):
        if entry.name == "__pycache__":
            continue
        if entry.is_dir() and not entry.is_symlink():
            _link_tree(entry, target / entry.name)
            continue
        try:
            os.link(entry, target / entry.name, follow_symlinks=True)
        except OSError:  # another filesystem (or no hard links): a copy, refreshed every start
            shutil.copy2(entry, target / entry.name)


def mount(checkout: Path, target: Path) -> None:
    checkout = checkout.resolve()
    if target.is_symlink():  # the layout of earlier versions: a link to the checkout
        target.unlink()
    elif target.exists():
        marker = target / MARKER
        if not marker.is_file() or marker.read_text(encoding="utf-8").strip() != str(checkout):
            raise SystemExit(
                f"{target} exists and is not this checkout's make-run mount; move it away first."
            )
    target.mkdir(parents=True, exist_ok=True)
    entries = {entry.name: entry for entry in wanted_entries(checkout)}
    for present in list(target.iterdir()):
        if present.name == MARKER:
            continue
        source = entries.get(present.name)
        stale = (
            source is None
            or present.name in PAGE_DIRS  # laid out afresh every time
            or not present.is_symlink()
            or Path(os.readlink(present)) != source
        )
        if stale:
            _remove(present)
    for name, source in entries.items():
        place = target / name
        if name in PAGE_DIRS and source.is_dir():
            _link_tree(source, place)
        elif not place.is_symlink():
            place.symlink_to(source, target_is_directory=source.is_dir())
    (target / MARKER).write_text(f"{checkout}\n", encoding="utf-8")


def add_dashboard_user_to_admins(cmd_config: Path) -> tuple[str, bool]:
    """(the dashboard user name, whether it was added). Nothing to do before the first start:
    AstrBot then creates the file with user `astrbot`, which its default admins_id holds."""
    if not cmd_config.is_file():
        return "astrbot", False
    config = json.loads(cmd_config.read_text(encoding="utf-8-sig"))
    username = str((config.get("dashboard") or {}).get("username") or "astrbot")
    admins = config.get("admins_id")
    admins = [str(a) for a in admins] if isinstance(admins, list) else ["astrbot"]
    if username in admins:
        return username, False
    config["admins_id"] = [*admins, username]
    # Written the way AstrBot writes it (UTF-8 with a BOM), through a temp file and a rename.
    fd, temp = tempfile.mkstemp(dir=cmd_config.parent, prefix=".cmd_config.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8-sig") as file:
            json.dump(config, file, indent=2, ensure_ascii=False)
        os.chmod(temp, cmd_config.stat().st_mode & 0o777)
        os.replace(temp, cmd_config)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return username, True


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "mount":
        mount(Path(argv[1]), Path(argv[2]))
        return 0
    if len(argv) == 2 and argv[0] == "admins":
        username, added = add_dashboard_user_to_admins(Path(argv[1]))
        print(f"{username}\t{'added' if added else 'kept'}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
