"""The pure core imports nothing that does I/O; the CLI starts without heavy libraries."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).parents[2] / "bojdeploy" / "core"
FORBIDDEN = {
    "docker",
    "XenAPI",
    "psycopg",
    "psycopg_pool",
    "requests",
    "subprocess",
    "socket",
    "sqlite3",
    "urllib",
    "http",
    "xmlrpc",
    "bojdeploy.store",
    "bojdeploy.drivers",
    "bojdeploy.engine.gitrepo",
    "bojdeploy.engine",
    "bojdeploy.frontends",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def is_forbidden(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


def test_core_modules_import_no_io_library() -> None:
    files = sorted(CORE.glob("*.py"))
    assert len(files) >= 8
    offenders = {f.name: sorted(m for m in imported_modules(f) if is_forbidden(m)) for f in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_the_core_loads_no_io_library() -> None:
    modules = [f"bojdeploy.core.{f.stem}" for f in sorted(CORE.glob("*.py"))]
    code = (
        "import json, sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "print(json.dumps(sorted(sys.modules)))"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
    )
    heavy = {"docker", "XenAPI", "psycopg", "psycopg_pool", "requests"}
    assert heavy.isdisjoint(loaded)


def test_help_loads_no_driver_or_database_library() -> None:
    code = (
        "import json, sys\n"
        "from bojdeploy.frontends.cli import run\n"
        "sys.argv = ['bojdeploy', '--help']\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()): run(['--help'])\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    heavy = {"docker", "XenAPI", "psycopg", "psycopg_pool", "requests", "pydantic", "jinja2"}
    heavy |= {"fastapi", "starlette", "uvicorn", "procrastinate", "prometheus_client"}
    assert heavy.isdisjoint(loaded), sorted(heavy & loaded)
