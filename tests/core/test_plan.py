"""make_plan against the table of cases in tests/cases/plan, plus diff_specs properties."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from bojdeploy.core.plan import (
    Action,
    Desired,
    FieldChange,
    Observed,
    Plan,
    Step,
    diff_specs,
    field_name,
    make_plan,
)
from bojdeploy.errors import PlanError

CASES = sorted((Path(__file__).parent.parent / "cases" / "plan").glob("*.yaml"))


def _desired(raw: dict[str, Any], environment: str) -> Desired:
    return Desired(
        kind=raw["kind"],
        name=raw["name"],
        environment=raw.get("environment", environment),
        resource_name=raw.get("resource_name", raw["name"]),
        config_hash=raw["config_hash"],
        spec=raw.get("spec", {}),
        manifest=raw.get("manifest", f"deploy/{raw['name']}.yml"),
        missing_secrets=tuple(raw.get("missing_secrets", ())),
        labels=raw.get("labels", {}),
    )


REPOSITORY = "team/app"  # a case's default run repository, and its resources' label


def _observed(raw: dict[str, Any], environment: str, repository: str | None) -> Observed:
    return Observed(
        kind=raw["kind"],
        resource_name=raw["resource_name"],
        managed=raw.get("managed", True),
        name=raw.get("name", raw["resource_name"]),
        environment=raw.get("environment", environment),
        config_hash=raw.get("config_hash"),
        spec=raw.get("spec"),
        state=raw.get("state"),
        id=raw.get("id"),
        labels=raw.get("labels"),
        repository=raw.get("repository", repository),
    )


def _expected_change(raw: str | dict[str, Any], actual: FieldChange) -> FieldChange:
    """A case lists a change as its path, or as {path, old, new} to check the values too."""
    if isinstance(raw, str):
        return FieldChange(raw, actual.old, actual.new)
    return FieldChange(raw["path"], raw["old"], raw["new"])


def _check_step(step: Step, want: dict[str, Any]) -> None:
    assert (step.action, step.kind, step.name) == (want["action"], want["kind"], want["name"])
    if "reason" in want:
        assert step.reason == want["reason"]
    expected = want.get("changes", [])
    assert [c.path for c in step.changes] == [
        c if isinstance(c, str) else c["path"] for c in expected
    ]
    assert list(step.changes) == [
        _expected_change(e, a) for e, a in zip(expected, step.changes, strict=True)
    ]


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_plan_case(path: Path) -> None:
    case = yaml.safe_load(path.read_text())
    environment = case.get("environment", "production")
    options = dict(case.get("options", {}))
    options["deleted_names"] = {tuple(n) for n in options.get("deleted_names", ())}
    options.setdefault("repository", REPOSITORY)
    labelled = case.get("labelled", options["repository"])  # the resources' default label
    desired = [_desired(d, environment) for d in case["desired"]]
    observed = [_observed(o, environment, labelled) for o in case["observed"]]
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(PlanError) as info:
            make_plan(desired, observed, environment=environment, **options)
        message = str(info.value)
        for fragment in expect["error"]:
            assert fragment in message
        assert len(message.splitlines()) == expect.get("error_lines", 1)
        return
    plan = make_plan(desired, observed, environment=environment, **options)
    assert len(plan.steps) == len(expect["steps"]), plan.steps
    for step, want in zip(plan.steps, expect["steps"], strict=True):
        _check_step(step, want)
    assert [f"{o.kind} {o.name}" for o in plan.orphans] == expect.get("orphans", [])
    assert plan.unpruned == expect.get("unpruned", "")


def test_at_least_fifteen_cases() -> None:
    assert len(CASES) >= 15


def _web(config_hash: str = "h1") -> Desired:
    return Desired("container", "web", "production", "web-1", config_hash, {}, "deploy/web.yml")


def test_plan_queries() -> None:
    observed = Observed("container", "web-1", True, "web", "production", "h0", state="running")
    plan = make_plan([_web()], [observed], environment="production")
    (step,) = [s for s in plan.steps if (s.kind, s.name) == ("container", "web")]
    assert step.action is Action.REPLACE
    assert step.resource_name == "web-1" and step.manifest == "deploy/web.yml"
    assert not [s for s in plan.steps if s.name == "web-1"]
    assert plan.has_changes
    assert plan.counts() == {
        Action.CREATE: 0,
        Action.UPDATE: 0,
        Action.REPLACE: 1,
        Action.DELETE: 0,
        Action.UNCHANGED: 0,
    }


def test_empty_plan_has_no_changes() -> None:
    plan = make_plan([], [], environment="production")
    assert plan == Plan("production", ())
    assert not plan.has_changes


def test_delete_step_resource_name_comes_from_the_observation() -> None:
    observed = Observed(
        "container", "legacy-c", True, "legacy", "production", "h9", repository="team/app"
    )
    plan = make_plan([], [observed], environment="production", prune=True, repository="team/app")
    (step,) = plan.steps
    assert (step.action, step.name, step.resource_name) == (Action.DELETE, "legacy", "legacy-c")
    assert step.desired is None and step.observed is observed


def test_diff_specs_paths() -> None:
    old = {"labels": {"io.example.team": "a"}, "ports": [{"target": 80}], "n": 1}
    new = {"labels": {"io.example.team": "b"}, "ports": [{"target": 81}], "n": 1.0}
    assert diff_specs(old, new) == [
        FieldChange('spec.labels["io.example.team"]', "a", "b"),
        FieldChange("spec.n", 1, 1.0),
        FieldChange("spec.ports[0].target", 80, 81),
    ]
    assert diff_specs({"a": True}, {"a": 1}, prefix="") == [FieldChange("a", True, 1)]


def test_diff_specs_reports_a_changed_type_at_its_path() -> None:
    assert diff_specs({"command": "httpd"}, {"command": ["httpd"]}) == [
        FieldChange("spec.command", "httpd", ["httpd"])
    ]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("spec.env.X", "env"),
        ("spec.ports[1]", "ports"),
        ('spec.labels["a.b"]', "labels"),
        ("power", "power"),
        ("config_hash", "config_hash"),
    ],
)
def test_field_name(path: str, field: str) -> None:
    assert field_name(path) == field


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
json_specs = st.dictionaries(st.text(max_size=5), json_values, max_size=5)


def _canonical(spec: dict[str, Any]) -> str:
    return json.dumps(spec, sort_keys=True)


@given(json_specs)
def test_diff_of_a_spec_with_itself_is_empty(spec: dict[str, Any]) -> None:
    assert diff_specs(spec, spec) == []


@given(json_specs, json_specs)
def test_diff_is_empty_iff_the_canonical_json_is_equal(
    a: dict[str, Any], b: dict[str, Any]
) -> None:
    assert (diff_specs(a, b) == []) == (_canonical(a) == _canonical(b))


@given(json_specs, json_specs)
def test_diff_paths_are_unique_and_reversible(a: dict[str, Any], b: dict[str, Any]) -> None:
    forward = diff_specs(a, b)
    assert len({c.path for c in forward}) == len(forward)
    assert [(c.path, c.new, c.old) for c in diff_specs(b, a)] == [
        (c.path, c.old, c.new) for c in forward
    ]
