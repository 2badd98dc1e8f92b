"""`make run` (.ci/astrbot-run.sh) lays out a root AstrBot 4.29.3 accepts, and makes the
dashboard user a bot admin.

The script runs for real with `--prepare` (everything but starting AstrBot) into a temporary
root; the layout it leaves is then checked with AstrBot's own page service, the code that
decides whether the dashboard lists and serves the plugin's page. The whole server under
`make run`, in a browser, is tests/plugin/test_make_run_browser.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support.harness import PLUGIN_DIR_NAME, REPO_ROOT

page_service = pytest.importorskip(
    "astrbot.dashboard.services.plugin_page_service",
    reason="plugin pages arrived in AstrBot 4.28 (the compat leg runs 4.14.6)",
)
from astrbot.core.star.star import StarMetadata  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="session")

SCRIPT = REPO_ROOT / ".ci" / "astrbot-run.sh"
PAGE_DIR = REPO_ROOT / "pages" / "spend"
PAGE_FILES = sorted(p.relative_to(PAGE_DIR) for p in PAGE_DIR.rglob("*") if p.is_file())


def prepare(root: Path) -> subprocess.CompletedProcess[str]:
    """`make run` up to the point where it would start AstrBot."""
    return subprocess.run(
        ["bash", str(SCRIPT), "--prepare"],
        env={**os.environ, "ASTRBOT_RUN_ROOT": str(root), "DASHBOARD_PORT": "6999"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def prepared(root: Path) -> str:
    done = prepare(root)
    assert done.returncode == 0, done.stderr
    return done.stdout


def service_for(root: Path) -> tuple[page_service.PluginPageService, StarMetadata]:
    """AstrBot's page service over the root's data/plugins, as the dashboard builds it (only
    the plugin manager's two paths and its list of plugins are read)."""
    plugin = StarMetadata(name=PLUGIN_DIR_NAME, root_dir_name=PLUGIN_DIR_NAME, activated=True)
    manager = SimpleNamespace(
        plugin_store_path=str(root / "data" / "plugins"),
        reserved_plugin_path=str(root / "reserved"),
        context=SimpleNamespace(get_all_stars=lambda: [plugin]),
    )
    return page_service.PluginPageService(manager), plugin  # type: ignore[arg-type]


async def served_pages(root: Path) -> list[str]:
    service, plugin = service_for(root)
    return [page["name"] for page in await service.serialize_plugin_pages(plugin)]


def mount_of(root: Path) -> Path:
    return root / "data" / "plugins" / PLUGIN_DIR_NAME


async def test_astrbots_page_service_serves_the_page_from_the_layout(tmp_path: Path):
    root = tmp_path / "run"
    banner = prepared(root)
    mount = mount_of(root)
    assert mount.is_dir() and not mount.is_symlink()
    assert f"http://127.0.0.1:6999/#/plugin-view/{PLUGIN_DIR_NAME}/spend" in banner

    assert await served_pages(root) == ["spend"]
    service, plugin = service_for(root)
    same_filesystem = os.stat(tmp_path).st_dev == os.stat(REPO_ROOT).st_dev
    for name in PAGE_FILES:
        served = await service.resolve_plugin_page_file(plugin, "spend", str(name))
        assert served == (mount / "pages" / "spend" / name).resolve()
        assert served.read_bytes() == (PAGE_DIR / name).read_bytes()
        if same_filesystem:  # a hard link: editing the checkout's file edits the served one
            assert served.stat().st_ino == (PAGE_DIR / name).stat().st_ino


async def test_everything_else_is_a_link_to_the_checkout(tmp_path: Path):
    root = tmp_path / "run"
    prepared(root)
    mount = mount_of(root)
    for entry in ("main.py", "metadata.yaml", "_conf_schema.json", "utils", ".astrbot-plugin"):
        assert (mount / entry).is_symlink(), entry
        assert (mount / entry).resolve() == REPO_ROOT / entry
    for absent in (".git", ".venv", ".run", "tests"):
        assert not (mount / absent).exists(), absent


async def test_the_symlinked_checkout_of_earlier_versions_is_replaced(tmp_path: Path):
    """The old layout (the plugin directory a symlink to the checkout) lists no page; the
    next `make run` replaces the link, never touching what it pointed to."""
    root = tmp_path / "run"
    prepared(root)
    mount = mount_of(root)
    for entry in list(mount.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            for path in sorted(entry.rglob("*"), reverse=True):
                path.rmdir() if path.is_dir() else path.unlink()
            entry.rmdir()
        else:
            entry.unlink()
    mount.rmdir()
    mount.symlink_to(REPO_ROOT, target_is_directory=True)
    assert await served_pages(root) == []  # what the dashboard showed: no page

    prepared(root)
    assert not mount.is_symlink()
    assert await served_pages(root) == ["spend"]
    assert all((PAGE_DIR / name).is_file() for name in PAGE_FILES)


async def test_a_directory_that_is_not_the_mount_is_left_alone(tmp_path: Path):
    root = tmp_path / "run"
    mount = mount_of(root)
    mount.mkdir(parents=True)
    (mount / "main.py").write_text("# someone's installed copy\n", encoding="utf-8")
    done = prepare(root)
    assert done.returncode != 0
    assert "move it away first" in done.stderr
    assert (mount / "main.py").read_text(encoding="utf-8") == "# someone's installed copy\n"


async def test_the_dashboard_user_is_made_a_bot_admin(tmp_path: Path):
    """AstrBot's first login renames the dashboard user; WebChat's sender id is that name."""
    root = tmp_path / "run"
    config = root / "data" / "cmd_config.json"
    config.parent.mkdir(parents=True)
    seeded = {
        "admins_id": ["astrbot", "10001"],
        "dashboard": {"username": "alice", "jwt_secret": "s"},
        "wake_prefix": ["/"],
        "provider_settings": {"default_provider_id": "fake"},
    }
    config.write_text(json.dumps(seeded, ensure_ascii=False), encoding="utf-8-sig")

    banner = prepared(root)
    saved = json.loads(config.read_text(encoding="utf-8-sig"))
    assert saved == {**seeded, "admins_id": ["astrbot", "10001", "alice"]}
    assert config.read_bytes().startswith(b"\xef\xbb\xbf")  # AstrBot's encoding kept
    assert "用户名 Username:    alice" in banner
    assert "just added to admins_id" in banner

    banner = prepared(root)  # the next start: already there, not added twice
    assert json.loads(config.read_text(encoding="utf-8-sig"))["admins_id"] == [
        "astrbot",
        "10001",
        "alice",
    ]
    assert "just added" not in banner


async def test_before_the_first_start_the_default_admin_is_shown(tmp_path: Path):
    root = tmp_path / "run"
    banner = prepared(root)
    assert not (root / "data" / "cmd_config.json").exists()  # AstrBot writes it on start
    assert "机器人管理员 Admin: astrbot" in banner
