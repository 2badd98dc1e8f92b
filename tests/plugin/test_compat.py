"""The AstrBot range metadata.yaml declares is the range the two test legs cover.

AstrBot 4.28 refuses to load or install a plugin whose `astrbot_version` excludes it, so the
upper bound is the next major release (the Star API's compatibility boundary), not the newest
tested release: a ceiling at 4.30 would break the plugin for every user on the next upgrade.
"""

from __future__ import annotations

import re

import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tests.support.astrbot_compat import ASTRBOT_VERSION
from tests.support.harness import REPO_ROOT


def _declared_range() -> SpecifierSet:
    metadata = yaml.safe_load((REPO_ROOT / "metadata.yaml").read_text(encoding="utf-8"))
    return SpecifierSet(metadata["astrbot_version"])


def _pinned_astrbot(requirements: str) -> Version:
    text = (REPO_ROOT / requirements).read_text(encoding="utf-8")
    match = re.search(r"^astrbot==([\w.]+)\s*$", text, re.MULTILINE | re.IGNORECASE)
    assert match, f"{requirements} pins no astrbot version"
    return Version(match.group(1))


def test_declared_range_starts_at_the_oldest_tested_release():
    declared = _declared_range()
    oldest = _pinned_astrbot("requirements-compat.txt")
    newest = _pinned_astrbot("requirements-dev.txt")
    assert oldest < newest
    assert oldest in declared and newest in declared
    lower_bounds = [Version(s.version) for s in declared if s.operator == ">="]
    assert lower_bounds == [oldest], "the range must start at the release test-compat runs"
    assert Version(f"{newest.major + 1}.0.0") not in declared


def test_running_astrbot_is_in_the_declared_range():
    assert Version(ASTRBOT_VERSION) in _declared_range()
