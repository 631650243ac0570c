"""An unexpected exception (a bug) in the CLI: one line without -v, its traceback with -v."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bojdeploy.frontends import cli
from tests.helpers import run_cli

HINT = "; run with -v for the traceback"


def broken(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("a bug\nacross two lines")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "bojdeploy.yaml").write_text("environments:\n  test: {branches: ['*']}\n")
    return tmp_path


def test_a_bug_in_a_command_is_one_line(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bojdeploy.engine.validate.validate_workspace", broken)
    result = run_cli("validate", str(repo))
    assert result.code == 1
    assert result.err.splitlines() == [
        f"error: internal error: RuntimeError: a bug across two lines{HINT}"
    ]


def test_with_v_a_bug_shows_its_traceback(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bojdeploy.engine.validate.validate_workspace", broken)
    result = run_cli("-v", "validate", str(repo))
    assert result.code == 1
    assert result.err.startswith("Traceback (most recent call last):")
    assert 'in broken\n    raise RuntimeError("a bug\\nacross two lines")' in result.err
    assert (
        result.err.splitlines()[-1] == "error: internal error: RuntimeError: a bug across two lines"
    )


@pytest.mark.parametrize("verbose", [False, True])
def test_a_bug_outside_any_command_handling_is_one_line_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], verbose: bool
) -> None:
    monkeypatch.setattr("bojdeploy.core.schema.manifest_schema", broken)
    code = cli.run(["-v", "schema"] if verbose else ["schema"])
    err = capsys.readouterr().err
    assert code == 1
    line = "error: internal error: RuntimeError: a bug across two lines"
    if verbose:
        assert err.startswith("Traceback") and err.splitlines()[-1] == line
    else:
        assert err.splitlines() == [line + HINT]


def test_a_usage_error_is_still_clicks_own(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["apply", "--no-such-option"]) == 2
    assert "No such option '--no-such-option'" in capsys.readouterr().err
