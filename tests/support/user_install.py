"""What a user's installation is made of, built offline from this checkout.

- `plugin_zip()`: the archive GitHub's "Download ZIP" gives: one top folder `<repo>-main/` with
  the plugin's files (tests, VCS data and venvs left out).
- `build_wheelhouse()`: wheels of requirements.txt and everything it depends on, repacked from
  the distributions installed in the interpreter running the tests (the versions the suite
  tested), so a user's pip can install them with `--no-index --find-links` on a machine
  without network. Nothing is downloaded.
- `make_astrbot_venv()`: a fresh venv holding only AstrBot (the version under test), as a user
  has it before installing the plugin; uv takes it from its cache when it can.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.astrbot_compat import ASTRBOT_VERSION
from tests.support.harness import REPO_ROOT, copy_plugin_files

# Per-install files a wheel does not carry (the installer writes its own).
_INSTALLER_FILES = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})


def github_zip_folder() -> str:
    """`<repo>-main`, the top folder of GitHub's archive of the default branch."""
    metadata = yaml.safe_load((REPO_ROOT / "metadata.yaml").read_text(encoding="utf-8"))
    repo = str(metadata["repo"]).rstrip("/").removesuffix(".git")
    return repo.rsplit("/", 1)[-1] + "-main"


def plugin_zip(work: Path) -> Path:
    """Build `<work>/<repo>-main.zip` with directory entries first, as GitHub writes them
    (AstrBot 4.14.6 takes the first entry as the folder to unpack)."""
    folder = github_zip_folder()
    staged = copy_plugin_files(work / "stage" / folder)
    archive = work / f"{folder}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{folder}/", b"")
        for path in sorted(staged.rglob("*")):
            name = f"{folder}/{path.relative_to(staged).as_posix()}"
            if path.is_dir():
                zf.writestr(f"{name}/", b"")
            else:
                zf.write(path, name)
    return archive


# --- wheelhouse ---------------------------------------------------------------------------------


def read_requirements(path: Path) -> list[Requirement]:
    requirements = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            requirements.append(Requirement(line))
    return requirements


def imported_distributions() -> set[str]:
    """Canonical names of the installed distributions whose modules main.py and utils/ import
    anywhere (module level or inside functions)."""
    top_level: set[str] = set()
    for path in [REPO_ROOT / "main.py", *sorted((REPO_ROOT / "utils").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                top_level.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                top_level.add(node.module.split(".")[0])
    providers = importlib.metadata.packages_distributions()
    return {canonicalize_name(d) for module in top_level for d in providers.get(module, [])}


def _applies(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in extras | {""})


def dependency_closure(requirements: list[Requirement]) -> list[importlib.metadata.Distribution]:
    """The installed distributions `requirements` need, dependencies and extras included."""
    found: dict[str, importlib.metadata.Distribution] = {}
    extras_seen: dict[str, set[str]] = {}
    pending = [(r, set[str]()) for r in requirements]
    while pending:
        requirement, parent_extras = pending.pop()
        if not _applies(requirement, parent_extras):
            continue
        key = canonicalize_name(requirement.name)
        wanted = set(requirement.extras)
        if key in found and wanted <= extras_seen[key]:
            continue
        dist = importlib.metadata.distribution(requirement.name)
        assert dist.version in requirement.specifier or not requirement.specifier, (
            f"installed {requirement.name} {dist.version} does not satisfy {requirement}"
        )
        found[key] = dist
        extras_seen[key] = extras_seen.get(key, set()) | wanted
        for dependency in dist.requires or []:
            pending.append((Requirement(dependency), extras_seen[key]))
    return list(found.values())


def _dist_info_dir(dist: importlib.metadata.Distribution) -> str:
    for file in dist.files or []:
        parts = PurePosixPath(str(file)).parts
        if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA":
            return parts[0]
    raise AssertionError(f"{dist.metadata['Name']}: no .dist-info/METADATA in its RECORD")


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def repack_wheel(dist: importlib.metadata.Distribution, dest: Path) -> Path:
    """A wheel of an installed distribution, from the files its RECORD lists."""
    dist_info = _dist_info_dir(dist)
    wheel_info = (dist.read_text("WHEEL") or "").splitlines()
    tags = [line.split(":", 1)[1].strip() for line in wheel_info if line.startswith("Tag:")]
    tags = tags or ["py3-none-any"]
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    wheel = dest / f"{name}-{dist.version}-{tags[0]}.whl"
    record: list[str] = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in dist.files or []:
            parts = PurePosixPath(str(file)).parts
            if ".." in parts or "__pycache__" in parts or parts[-1].endswith(".pyc"):
                continue  # scripts (regenerated from entry points) and bytecode
            if parts[0] == dist_info and parts[-1] in _INSTALLER_FILES:
                continue
            data = Path(dist.locate_file(file)).read_bytes()
            zf.writestr(str(PurePosixPath(*parts)), data)
            record.append(f"{PurePosixPath(*parts)},{_record_hash(data)},{len(data)}")
        record.append(f"{dist_info}/RECORD,,")
        zf.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return wheel


def build_wheelhouse(requirements: Path, dest: Path) -> dict[str, str]:
    """Wheels for `requirements` in `dest`; returns {canonical name: version}."""
    dest.mkdir(parents=True, exist_ok=True)
    versions = {}
    for dist in dependency_closure(read_requirements(requirements)):
        repack_wheel(dist, dest)
        versions[canonicalize_name(dist.metadata["Name"])] = dist.version
    return versions


# --- the user's AstrBot venv ----------------------------------------------------------------------


def _uv() -> str:
    found = shutil.which("uv") or str(REPO_ROOT / ".uv" / "bin" / "uv")
    if not Path(found).exists():
        raise RuntimeError("uv not found: run `make venv` (it bootstraps .uv/bin/uv)")
    return found


def make_astrbot_venv(venv: Path) -> Path:
    """A venv with astrbot==<the version under test> and its dependencies only."""
    uv = _uv()
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([uv, "venv", "--quiet", "--python", base, str(venv)], check=True)
    python = venv / "bin" / "python"
    install = [
        uv,
        "pip",
        "install",
        "--quiet",
        "--python",
        str(python),
        f"astrbot=={ASTRBOT_VERSION}",
    ]
    # The cache `make venv` filled is enough offline; ask the index only when it is not.
    if subprocess.run([*install, "--offline"], check=False).returncode != 0:
        subprocess.run(install, check=True)
    return venv


def installed_versions(venv: Path) -> dict[str, str]:
    """{canonical name: version} of everything installed in `venv`."""
    script = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONNOUSERSITE": "1"},
    ).stdout
    return {canonicalize_name(name): version for name, version in json.loads(out).items()}


def pip_check(venv: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "check"],
        check=False,
        capture_output=True,
        text=True,
    )
