"""What a user sees of a plan: text, JSON, markdown and short descriptions."""

from __future__ import annotations

import json

from bojdeploy.core.plan import Action, Desired, FieldChange, Observed, Plan, Step, make_plan
from bojdeploy.core.render import (
    describe_step,
    format_value,
    plan_to_dict,
    plan_to_markdown,
    plan_to_text,
    summary_line,
)

ENV = "production"


def _desired(kind: str, name: str, config_hash: str, spec: dict[str, object]) -> Desired:
    return Desired(kind, name, ENV, name, config_hash, spec, f"deploy/{name}.yml")


def _observed(
    kind: str,
    name: str,
    config_hash: str,
    spec: dict[str, object] | None = None,
    state: str | None = None,
) -> Observed:
    return Observed(
        kind, name, True, name, ENV, config_hash, spec=spec, state=state, repository="team/app"
    )


def _small_plan() -> Plan:
    desired = [
        _desired("container", "web", "h1", {"image": "web:1"}),
        _desired("service", "api", "h2", {"replicas": 3, "env": {"NEW": "x"}}),
        _desired("container", "worker", "h3", {"image": "worker:1"}),
        _desired("vm", "build-box", "h4", {"template": "debian-12"}),
    ]
    observed = [
        _observed("service", "api", "h1", spec={"replicas": 2, "env": {"OLD": "y"}}),
        _observed("container", "worker", "h3", state="exited"),
        _observed("vm", "build-box", "h4", state="Running"),
        _observed("container", "old-thing", "h9", state="running"),
        _observed("container", "legacy", "h9", state="running"),
    ]
    plan = make_plan(
        desired,
        observed,
        environment=ENV,
        prune=True,
        full_scope=False,
        deleted_names={("container", "old-thing")},
        repository="team/app",
    )
    return Plan(plan.environment, plan.steps, (observed[-1],))


def test_plan_text_is_what_a_user_reads() -> None:
    assert plan_to_text(_small_plan()).splitlines() == [
        "  + create     container web        (deploy/web.yml)",
        "  ~ update     service   api        (deploy/api.yml)",
        '      + spec.env.NEW: "x"',
        '      - spec.env.OLD: "y"',
        "      ~ spec.replicas: 2 -> 3",
        "  -/+ replace  container worker     (deploy/worker.yml)  container is exited",
        "  = unchanged  vm        build-box  (deploy/build-box.yml)",
        "  - delete     container old-thing  manifest deleted",
        "",
        "Plan: 1 to create, 1 to update, 1 to replace, 1 to delete, 1 unchanged.",
        "Note: 1 managed resource has no manifest (use --prune to delete it): container legacy",
    ]


def test_plan_text_with_a_header_and_no_changes() -> None:
    desired = [_desired("container", "web", "h1", {})]
    plan = make_plan(desired, [_observed("container", "web", "h1")], environment=ENV)
    assert plan_to_text(plan, header="Plan for production at abc1234") == (
        "Plan for production at abc1234\n"
        "\n"
        "  = unchanged  container web  (deploy/web.yml)\n"
        "\n"
        "No changes. 1 unchanged.\n"
    )
    assert plan_to_text(Plan(ENV, ())) == "No changes. 0 unchanged.\n"


def test_plan_text_colors_only_when_asked() -> None:
    text = plan_to_text(_small_plan(), color=True)
    assert "\033[32m+ create   \033[0m  container web" in text
    assert "\033[31m-\033[0m spec.env.OLD" in text
    assert "\033[" not in plan_to_text(_small_plan())


def test_long_values_are_truncated() -> None:
    value = format_value("x" * 200)
    assert len(value) == 80 and value.endswith("…") and value.startswith('"x')
    assert format_value({"b": [1, None], "a": True}) == '{"a": true, "b": [1, null]}'


def test_two_orphans_note() -> None:
    orphans = (_observed("container", "a", "h"), _observed("vm", "b", "h"))
    assert plan_to_text(Plan(ENV, (), orphans)).splitlines()[-1] == (
        "Note: 2 managed resources have no manifest (use --prune to delete them): container a, vm b"
    )


def test_summary_line() -> None:
    assert summary_line(_small_plan()) == (
        "Plan: 1 to create, 1 to update, 1 to replace, 1 to delete, 1 unchanged."
    )


def test_plan_dict_survives_json() -> None:
    data = plan_to_dict(_small_plan())
    assert json.loads(json.dumps(data)) == data
    assert data["summary"] == {
        "create": 1,
        "update": 1,
        "replace": 1,
        "delete": 1,
        "unchanged": 1,
    }
    assert data["has_changes"] is True
    assert data["unpruned"] is None
    assert data["steps"][1] == {
        "action": "update",
        "kind": "service",
        "name": "api",
        "resource_name": "api",
        "environment": ENV,
        "manifest": "deploy/api.yml",
        "config_hash": "h2",
        "observed_config_hash": "h1",
        "reason": "config changed",
        "changes": [
            {"path": "spec.env.NEW", "old": None, "new": "x"},
            {"path": "spec.env.OLD", "old": "y", "new": None},
            {"path": "spec.replicas", "old": 2, "new": 3},
        ],
    }
    assert data["steps"][4]["config_hash"] is None
    assert data["orphans"][0]["name"] == "legacy"


def test_plan_dict_makes_spec_values_json_safe() -> None:
    change = FieldChange("spec.ports", ("80:80",), {"a": frozenset()})
    step = Step(
        Action.UPDATE, "service", "api", ENV, None, _observed("service", "api", "h"), (change,)
    )
    data = plan_to_dict(Plan(ENV, (step,)))
    assert json.loads(json.dumps(data)) == data
    assert data["steps"][0]["changes"][0] == {
        "path": "spec.ports",
        "old": ["80:80"],
        "new": {"a": "frozenset()"},
    }


def test_plan_markdown() -> None:
    assert plan_to_markdown(_small_plan()).splitlines() == [
        "| Action | Kind | Name | Changes |",
        "| --- | --- | --- | --- |",
        "| + create | container | web |  |",
        '| ~ update | service | api | `spec.env.NEW`: "x"<br>`spec.env.OLD`: "y"'
        "<br>`spec.replicas`: 2 -&gt; 3 |",
        "| -/+ replace | container | worker | container is exited |",
        "| = unchanged | vm | build-box |  |",
        "| - delete | container | old-thing | manifest deleted |",
        "",
        "**Plan: 1 to create, 1 to update, 1 to replace, 1 to delete, 1 unchanged.**",
        "",
        "Note: 1 managed resource has no manifest (use --prune to delete it): container legacy",
    ]


def test_markdown_escapes_cells() -> None:
    change = FieldChange("spec.command", None, "a | b <script>")
    step = Step(Action.UPDATE, "service", "api", ENV, None, None, (change,))
    row = plan_to_markdown(Plan(ENV, (step,))).splitlines()[2]
    assert row == '| ~ update | service | api | `spec.command`: "a \\| b &lt;script&gt;" |'


def test_describe_step() -> None:
    steps = {s.name: s for s in _small_plan().steps}
    assert describe_step(steps["web"]) == "create container web"
    assert describe_step(steps["api"]) == "update service api: env, replicas"
    assert describe_step(steps["worker"]) == "replace container worker: container is exited"
    assert describe_step(steps["build-box"]) == "vm build-box unchanged"
    assert describe_step(steps["old-thing"]) == "delete container old-thing: manifest deleted"


def test_describe_a_secret_change() -> None:
    desired = [_desired("service", "api", "h2", {"image": "api:1"})]
    observed = [_observed("service", "api", "h1", spec={"image": "api:1"})]
    (step,) = make_plan(desired, observed, environment=ENV).steps
    assert describe_step(step) == "update service api: a secret or an included file changed"


def test_an_unfinished_deployment_is_finished_or_undone() -> None:
    desired = [_desired("container", "web", "h1", {"image": "web:2"})]
    why = "deployment #7 was interrupted; web.previous is still beside it"
    observed = [Observed("container", "web", True, "web", ENV, "h1", unfinished=why)]
    plan = make_plan(desired, observed, environment=ENV)
    (step,) = plan.steps
    assert describe_step(step) == f"finish or undo container web (unfinished: {why})"
    assert f"~ update     container web  (deploy/web.yml)  unfinished: {why}" in plan_to_text(plan)
    assert summary_line(plan).startswith("Plan: 0 to create, 1 to update")


def test_orphan_note_says_why_prune_was_withheld() -> None:
    orphan = _observed("container", "old", "h9")
    kept = Plan(ENV, (), (orphan,), unpruned="this run's repository is unknown")
    assert plan_to_dict(kept)["unpruned"] == "this run's repository is unknown"
    assert plan_to_text(kept).splitlines()[-1] == (
        "Note: 1 managed resource has no manifest (not deleted: this run's repository is "
        "unknown): container old"
    )
    two = Plan(ENV, (), (orphan, _observed("vm", "box", "h9")))
    assert plan_to_text(two).splitlines()[-1] == (
        "Note: 2 managed resources have no manifest (use --prune to delete them): "
        "container old, vm box"
    )
