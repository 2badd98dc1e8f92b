"""Installing as users do: GitHub's zip of the plugin, uploaded through the dashboard.

The AstrBot runs from a fresh venv that has only AstrBot in it (the version under test), so
the plugin's requirements really have to be installed; its pip is pointed at a local
wheelhouse through the `pip_install_arg` setting (no network needed). AstrBot pip-installs
requirements.txt on a zip install; the test checks they resolved against what AstrBot pins
(nothing AstrBot had installed changed version, `pip check` is clean), that the plugin loaded
with its tool, and that it draws once configured.
"""

from __future__ import annotations

import asyncio
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from packaging.utils import canonicalize_name

from tests.fakes.chat_llm import FakeChatLLM
from tests.fakes.openrouter import FakeOpenRouter, png_prompt
from tests.support import astrbot_compat
from tests.support.e2e_server import AstrBotServer
from tests.support.harness import PLUGIN_DIR_NAME, REPO_ROOT, TOOL_NAME
from tests.support.keys import REAL_LOOKING_KEYS
from tests.support.user_install import (
    build_wheelhouse,
    github_zip_folder,
    imported_distributions,
    installed_versions,
    make_astrbot_venv,
    pip_check,
    plugin_zip,
    read_requirements,
)

pytestmark = [pytest.mark.install, pytest.mark.realtime, pytest.mark.asyncio(loop_scope="session")]


@dataclass
class UserInstall:
    server: AstrBotServer
    venv: Path
    zip_path: Path
    wheelhouse: dict[str, str]
    before: dict[str, str]  # the venv before the plugin came
    llm: FakeChatLLM
    openrouter: FakeOpenRouter
    answer: dict[str, Any] | None = None  # the dashboard's answer to the upload


def upload_name(archive: Path) -> str:
    """The file name the browser uploads. 4.14.6 names the plugin directory after it (lower
    case, "-main" removed), and GitHub's `<repo>-main.zip` of this repo has a dot and a dash
    there, which Python cannot import: 4.14.6 users must rename the zip to the plugin name."""
    if astrbot_compat.zip_install_names_dir_from_metadata():
        return archive.name
    return f"{PLUGIN_DIR_NAME}-main.zip"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def user(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[UserInstall]:
    work = tmp_path_factory.mktemp("user-install")
    venv = await asyncio.to_thread(make_astrbot_venv, work / "venv")
    wheelhouse = await asyncio.to_thread(
        build_wheelhouse, REPO_ROOT / "requirements.txt", work / "wheelhouse"
    )
    zip_path = await asyncio.to_thread(plugin_zip, work)
    before = await asyncio.to_thread(installed_versions, venv)
    llm, openrouter = FakeChatLLM(), FakeOpenRouter()
    await llm.start()
    await openrouter.start()
    server = AstrBotServer(
        work / "root",
        llm_base_url=llm.base_url,
        install=False,
        config={"pip_install_arg": f"--no-index --find-links {work / 'wheelhouse'}"},
        cli=[str(venv / "bin" / "astrbot")],
    )
    try:
        await server.start()
        yield UserInstall(server, venv, zip_path, wheelhouse, before, llm, openrouter)
    finally:
        await server.stop()
        await llm.stop()
        await openrouter.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def installed(user: UserInstall) -> UserInstall:
    """The zip uploaded the way the dashboard's "install from file" form sends it."""
    form = aiohttp.FormData()
    form.add_field(
        "file",
        user.zip_path.read_bytes(),
        filename=upload_name(user.zip_path),
        content_type="application/zip",
    )
    offset = user.server.log_size()
    try:
        user.answer = await user.server.api("POST", "/api/plugin/install-upload", data=form)
    except Exception as exc:
        raise AssertionError(f"upload failed: {exc}\n{user.server.log_since(offset)}") from exc
    return user


async def test_zip_is_laid_out_like_a_github_download(user: UserInstall):
    folder = github_zip_folder()
    with zipfile.ZipFile(user.zip_path) as zf:
        names = zf.namelist()
    assert names[0] == f"{folder}/"
    assert all(name.startswith(f"{folder}/") for name in names)
    files = {name.removeprefix(f"{folder}/") for name in names}
    assert {"main.py", "metadata.yaml", "_conf_schema.json", "requirements.txt"} <= files
    # The panel's English texts travel in a dot directory, which GitHub's zip keeps.
    assert ".astrbot-plugin/i18n/en-US.json" in files
    assert any(name.startswith("utils/") and name.endswith(".py") for name in files)
    for dev_only in ("tests/", ".git/", ".venv/", ".uv/"):
        assert not any(name.startswith(dev_only) for name in files), dev_only


def must_be_installed(required: set[str]) -> set[str]:
    """What the zip install has to bring: every requirement on 4.29.3; on 4.14.6 (pip only on
    ImportError) those the plugin's code imports."""
    if astrbot_compat.zip_install_installs_requirements():
        return required
    return required & imported_distributions()


async def test_requirements_install_within_astrbot_pins(installed: UserInstall):
    required = {
        canonicalize_name(r.name) for r in read_requirements(REPO_ROOT / "requirements.txt")
    }
    # The fresh venv lacks some requirement, or this test would prove nothing about pip.
    assert required - set(installed.before), "the fresh AstrBot venv had every requirement"

    after = await asyncio.to_thread(installed_versions, installed.venv)
    expected = must_be_installed(required)
    assert expected <= set(after), f"not installed: {sorted(expected - set(after))}"
    for name in expected - set(installed.before):
        assert after[name] == installed.wheelhouse[name], name
    changed = {n: (v, after.get(n)) for n, v in installed.before.items() if after.get(n) != v}
    assert changed == {}, "installing the plugin changed packages AstrBot had installed"
    check = await asyncio.to_thread(pip_check, installed.venv)
    assert check.returncode == 0, check.stdout + check.stderr


async def test_plugin_loads_and_lists_its_tool(installed: UserInstall):
    server = installed.server
    assert (server.root / "data" / "plugins" / PLUGIN_DIR_NAME / "main.py").is_file()
    plugins = await server.api("GET", "/api/plugin/get")
    [ours] = [p for p in plugins if p["name"] == PLUGIN_DIR_NAME]
    assert ours["activated"] is True
    tools = await server.api("GET", "/api/tools/list")
    [tool] = [t for t in tools if t["name"] == TOOL_NAME]
    assert tool["active"] is True
    # Its config file was created from the schema's defaults.
    config = (await server.plugin_config_view())["config"]
    assert config["openrouter_api_keys"] == []


async def test_installed_plugin_draws_once_configured(installed: UserInstall):
    server = installed.server
    config = (await server.plugin_config_view())["config"]
    await server.update_plugin_config(
        {
            **config,
            "openrouter_api_keys": [REAL_LOOKING_KEYS[0]],
            "custom_api_base": installed.openrouter.base_url,
        }
    )
    events = await server.chat("画一片开满向日葵的田野")
    [upstream] = installed.openrouter.chat_requests()
    assert upstream.prompt == "画一片开满向日葵的田野"
    images = [e["data"] for e in events if e.get("type") == "image"]
    assert len(images) == 1, events
    image = await server.chat_file(images[0].removeprefix("[IMAGE]"))
    assert png_prompt(image) == upstream.prompt
