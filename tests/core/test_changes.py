"""Which manifests a change touches, and why: table-driven tests of the pure selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bojdeploy.core.changes import (
    FileChange,
    Selected,
    Selection,
    parse_name_status,
    select_all,
    select_changed,
)
from bojdeploy.core.discovery import is_manifest_path

DEFAULT_PATTERNS = ["deploy/**/*.yml", "deploy/**/*.yaml"]
CASES = yaml.safe_load(
    (Path(__file__).parents[1] / "cases" / "changes" / "select_changed.yaml").read_text()
)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_select_changed(case: dict[str, Any]) -> None:
    changes = [FileChange(*line.split(" ", 1)) for line in case["changes"]]
    selection = select_changed(
        case["manifests"],
        changes,
        case.get("dependencies", {}),
        patterns=case.get("patterns", DEFAULT_PATTERNS),
        config_file=case.get("config_file", "bojdeploy.yaml"),
        range_label=case.get("range", "abc1234..def5678"),
    )
    expect = case["expect"]
    assert {s.path: s.reason for s in selection.selected} == expect.get("selected", {})
    assert selection.paths() == sorted(expect.get("selected", {}))
    assert list(selection.deleted) == expect.get("deleted", [])
    assert selection.full is expect.get("full", False)


@pytest.mark.parametrize(
    ("path", "patterns", "expected"),
    [
        ("deploy/web.yml", ["deploy/**/*.yml"], True),
        ("deploy/a/b/web.yml", ["deploy/**/*.yml"], True),
        ("deploy/web.yaml", ["deploy/**/*.yml"], False),
        ("deploy/web.yaml", ["deploy/**/*.yml", "deploy/**/*.yaml"], True),
        ("other/deploy/web.yml", ["deploy/**/*.yml"], False),
        ("deployments/web.yml", ["deploy/**/*.yml"], False),
        ("deploy/a/web.yml", ["deploy/*.yml"], False),
        ("deploy/web.yml", ["deploy/*.yml"], True),
        ("web.yml", ["**/*.yml"], True),
        ("x/y/web.yml", ["**/*.yml"], True),
        ("deploy/a/b/web.yml", ["deploy/**/b/*.yml"], True),
        ("deploy/b/web.yml", ["deploy/**/b/*.yml"], True),
        ("deploy/web-1.yml", ["deploy/web-?.yml"], True),
        ("deploy/Web.yml", ["deploy/web.yml"], False),
        ("./deploy/web.yml", ["deploy/*.yml"], True),
        ("deploy/web.yml", ["./deploy/*.yml"], True),
        ("deploy/sub dir/my app.yml", ["deploy/**/*.yml"], True),
        ("deploy/web.yml", [], False),
    ],
)
def test_is_manifest_path(path: str, patterns: list[str], expected: bool) -> None:
    assert is_manifest_path(path, patterns) is expected


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("", []),
        ("M\0deploy/web.yml\0", [("M", "deploy/web.yml")]),
        (
            "A\0deploy/new.yml\0D\0deploy/old.yml\0T\0deploy/link.yml\0",
            [("A", "deploy/new.yml"), ("D", "deploy/old.yml"), ("T", "deploy/link.yml")],
        ),
        ("M\0deploy/with\ttab.yml\0", [("M", "deploy/with\ttab.yml")]),
        ("M\0deploy/with space.yml\0", [("M", "deploy/with space.yml")]),
        ("M\0deploy/new\nline.yml\0", [("M", "deploy/new\nline.yml")]),
        ("M\0deploy/café.yml\0", [("M", "deploy/café.yml")]),
        (
            "R087\0deploy/web.yml\0deploy/front.yml\0",
            [("D", "deploy/web.yml"), ("A", "deploy/front.yml")],
        ),
        ("C100\0deploy/web.yml\0deploy/copy.yml\0", [("A", "deploy/copy.yml")]),
        ("M\0deploy/web.yml", [("M", "deploy/web.yml")]),
    ],
)
def test_parse_name_status(output: str, expected: list[tuple[str, str]]) -> None:
    assert parse_name_status(output) == [FileChange(s, p) for s, p in expected]


@pytest.mark.parametrize(
    "output",
    ["M\tdeploy/web.yml\n", "M\0", "R100\0deploy/web.yml\0", "M\0a.yml\0\0b.yml\0"],
)
def test_parse_name_status_refuses_output_it_cannot_read(output: str) -> None:
    with pytest.raises(ValueError, match="name-status -z"):
        parse_name_status(output)


def test_select_all_selects_every_manifest_once_with_the_reason() -> None:
    selection = select_all(
        ["deploy/web.yml", "deploy/db.yml", "./deploy/web.yml"], "before is all zeros (new branch)"
    )
    assert selection == Selection(
        selected=(
            Selected("deploy/db.yml", "all manifests: before is all zeros (new branch)"),
            Selected("deploy/web.yml", "all manifests: before is all zeros (new branch)"),
        ),
        deleted=(),
        full=True,
        note="before is all zeros (new branch): considering every manifest",
    )


def test_reason_for_answers_for_selected_manifests_only() -> None:
    selection = select_changed(
        ["deploy/web.yml", "deploy/db.yml"],
        [FileChange("M", "deploy/web.yml")],
        {},
        patterns=DEFAULT_PATTERNS,
        range_label="abc1234..def5678",
    )
    assert selection.reason_for("deploy/web.yml") == "modified in abc1234..def5678"
    assert selection.reason_for("./deploy/web.yml") == "modified in abc1234..def5678"
    assert selection.reason_for("deploy/db.yml") is None
