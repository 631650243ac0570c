"""The layers of docs/architecture.md hold: each package imports only the layers below it.

front ends -> engine -> drivers | store | forge -> core. Front ends may read the store (history,
logs) and talk to Gitea (statuses) but never reach a target except through the engine.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "bojdeploy"

# layer -> the bojdeploy packages it must never import (any module inside them either)
FORBIDDEN: dict[str, set[str]] = {
    "core": {
        "bojdeploy.engine",
        "bojdeploy.frontends",
        "bojdeploy.drivers",
        "bojdeploy.store",
        "bojdeploy.forge",
        "bojdeploy.settings",
        "bojdeploy.testing",
    },
    "drivers": {
        "bojdeploy.engine",
        "bojdeploy.frontends",
        "bojdeploy.store",
        "bojdeploy.forge",
        "bojdeploy.testing",
    },
    "store": {
        "bojdeploy.engine",
        "bojdeploy.frontends",
        "bojdeploy.drivers",
        "bojdeploy.forge",
        "bojdeploy.testing",
    },
    "forge": {
        "bojdeploy.engine",
        "bojdeploy.frontends",
        "bojdeploy.drivers",
        "bojdeploy.store",
        "bojdeploy.testing",
    },
    "engine": {"bojdeploy.frontends", "bojdeploy.testing"},
    "frontends": {"bojdeploy.drivers", "bojdeploy.testing"},
}


def imports_of(source: str, module: str) -> set[str]:
    """Every module `source` imports (relative imports resolved against `module`)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: -node.level]
                base = ".".join(parent + ([base] if base else []))
            names.add(base)
            # `from bojdeploy import drivers` imports the package drivers
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def violations(root: Path) -> dict[str, list[str]]:
    """file -> the forbidden modules it imports, for every layer under `root`."""
    found: dict[str, list[str]] = {}
    for layer, forbidden in FORBIDDEN.items():
        for path in sorted((root / layer).rglob("*.py")):
            module = ".".join(("bojdeploy",) + path.relative_to(root).with_suffix("").parts)
            bad = sorted(
                m
                for m in imports_of(path.read_text(), module)
                if any(m == f or m.startswith(f + ".") for f in forbidden)
            )
            if bad:
                found[str(path.relative_to(root))] = bad
    return found


def test_every_layer_exists_and_has_modules() -> None:
    for layer in FORBIDDEN:
        assert list((PACKAGE / layer).rglob("*.py")), f"bojdeploy/{layer} is empty or missing"


def test_no_layer_imports_a_layer_above_it() -> None:
    assert violations(PACKAGE) == {}


@pytest.mark.parametrize(
    ("layer", "planted", "expected"),
    [
        ("frontends", "from bojdeploy.drivers import Targets\n", "bojdeploy.drivers"),
        ("frontends", "from bojdeploy import drivers\n", "bojdeploy.drivers"),
        ("frontends", "import bojdeploy.drivers.container\n", "bojdeploy.drivers.container"),
        ("engine", "from bojdeploy.frontends.cli import main\n", "bojdeploy.frontends.cli"),
        ("drivers", "from bojdeploy.store.base import StateStore\n", "bojdeploy.store.base"),
        ("drivers", "from ..engine import apply\n", "bojdeploy.engine"),
        ("core", "from bojdeploy.drivers.base import Work\n", "bojdeploy.drivers.base"),
        ("store", "from bojdeploy.engine.recording import Records\n", "bojdeploy.engine.recording"),
    ],
)
def test_a_planted_forbidden_import_is_found(
    tmp_path: Path, layer: str, planted: str, expected: str
) -> None:
    for name in FORBIDDEN:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / layer / "planted.py").write_text('"""x"""\n' + planted)
    assert expected in violations(tmp_path)[f"{layer}/planted.py"]


def test_allowed_imports_are_not_flagged(tmp_path: Path) -> None:
    for name in FORBIDDEN:
        (tmp_path / name).mkdir()
    (tmp_path / "frontends" / "ok.py").write_text(
        "from bojdeploy import engine\nfrom bojdeploy.store.base import StateStore\n"
        "from bojdeploy.forge.gitea import GiteaClient\n"
    )
    (tmp_path / "engine" / "ok.py").write_text(
        "from bojdeploy.drivers import Targets\nfrom bojdeploy.store import open_store\n"
    )
    (tmp_path / "drivers" / "ok.py").write_text("from bojdeploy.core.plan import Observed\n")
    assert violations(tmp_path) == {}
