"""What a release is made of: one version, a lock covering every dependency, license, changelog
and the compatibility table. The release itself is built and run in tests/action/test_release.py."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bojdeploy import __version__
from tests.action import ROOT

PIN = re.compile(
    r"^([A-Za-z0-9._-]+)==(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", re.M
)


def locked() -> dict[str, tuple[str, int]]:
    """requirements.lock as name -> (version, number of hashes)."""
    text = (ROOT / "requirements.lock").read_text()
    return {
        canonicalize_name(name): (version, hashes.count("--hash="))
        for name, version, hashes in PIN.findall(text)
    }


def test_the_version_is_set_once_and_shown_by_the_cli() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "bojdeploy.__version__"}
    done = subprocess.run(
        [sys.executable, "-m", "bojdeploy", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout == f"bojdeploy, version {__version__}\n"


def test_the_lock_pins_every_dependency_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = locked()
    lines = [x for x in (ROOT / "requirements.lock").read_text().splitlines() if "==" in x]
    assert len(pins) == len(lines), "every pin has its hashes"
    relay = project["project"]["optional-dependencies"]["relay"]  # the image runs the relay too
    for spec in project["project"]["dependencies"] + relay:
        wanted = Requirement(spec)
        name = canonicalize_name(wanted.name)
        assert name in pins, f"{wanted.name} is not in requirements.lock (run scripts/lock.sh)"
        version, hashes = pins[name]
        assert wanted.specifier.contains(version), f"{name}=={version} does not satisfy {spec}"
        assert hashes >= 1
        for extra in wanted.extras:  # psycopg[binary], docker[ssh]: what the extra adds is pinned
            added = extra_requirements(wanted.name, extra)
            assert added, f"{wanted.name}[{extra}] adds nothing"
            missing = added - set(pins)
            assert not missing, (
                f"{wanted.name}[{extra}] needs {sorted(missing)}: run scripts/lock.sh"
            )


def extra_requirements(package: str, extra: str) -> set[str]:
    """The packages an extra of an installed package adds, from its metadata."""
    found = set()
    for line in metadata.requires(package) or []:
        requirement = Requirement(line)
        marker = requirement.marker
        only_with_extra = marker is not None and not marker.evaluate({"extra": ""})
        if only_with_extra and marker is not None and marker.evaluate({"extra": extra}):
            found.add(canonicalize_name(requirement.name))
    return found


def test_the_dockerfile_installs_only_from_the_lock() -> None:
    text = (ROOT / "Dockerfile").read_text()
    installs = [call.strip() for call in re.findall(r"\$pip ([^;\\\n]*)", text)]
    assert installs[0] == "--require-hashes -r /src/requirements.lock"
    assert installs[1:] and all(call.startswith("--no-deps ") for call in installs[1:])


def test_license_changelog_and_compatibility() -> None:
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert "bojdeploy contributors" in (ROOT / "LICENSE").read_text()
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "Keep a Changelog" in changelog
    assert "## [Unreleased]" in changelog or f"## [{__version__}]" in changelog
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Compatibility", 1)[1].split("\n## ", 1)[0]
    for system in ("Gitea", "act_runner", "Docker Engine", "XCP-ng", "PostgreSQL", "Python"):
        row = next((line for line in section.splitlines() if line.startswith(f"| {system}")), "")
        assert "tested" in row or "claimed" in row, f"no compatibility row for {system}"


def test_every_file_the_package_reads_is_package_data() -> None:
    package = ROOT / "bojdeploy"
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["bojdeploy"]
    data = [
        path
        for path in package.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    ]
    assert any(p.match("*/dashboard/templates/*.html") for p in data)
    missing = [
        str(p.relative_to(package))
        for p in data
        if not any(p.relative_to(package).match(glob) for glob in globs)
    ]
    assert missing == []
