"""The plugin's code imports nothing but the standard library, AstrBot and its four declared
runtime requirements (aiohttp, pillow, googletrans, tenacity): a package that only comes along
with one of them (httpx under googletrans) may change or vanish with its next release."""

from __future__ import annotations

from packaging.utils import canonicalize_name

from tests.support.harness import REPO_ROOT
from tests.support.user_install import imported_distributions, read_requirements


def test_the_plugin_imports_only_its_declared_requirements():
    declared = {
        canonicalize_name(r.name) for r in read_requirements(REPO_ROOT / "requirements.txt")
    }
    assert declared == {"aiohttp", "pillow", "googletrans", "tenacity"}
    assert imported_distributions() - {"astrbot"} <= declared
