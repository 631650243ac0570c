"""The per-kind plan rules: one table entry per kind, and a clear error for any other kind."""

from __future__ import annotations

import pytest

from bojdeploy.core.kinds import KINDS, Refusal, Verdict, rules_for
from bojdeploy.core.plan import Action, Desired, Observed, Plan, Step, force_redeploy
from bojdeploy.errors import PlanError


def test_an_unknown_kind_is_a_plan_error_naming_the_known_ones() -> None:
    with pytest.raises(PlanError, match="unknown kind 'widget' \\(known kinds: container, service"):
        rules_for("widget")


@pytest.mark.parametrize(
    ("kind", "action"),
    [("container", Action.REPLACE), ("service", Action.UPDATE), ("vm", Action.UPDATE)],
)
def test_a_redeploy_replaces_a_container_and_updates_the_rest(kind: str, action: Action) -> None:
    want = Desired(kind, "web", "prod", "web", "h", {}, "deploy/web.yml")
    seen = Observed(kind, "web", True, "web", "prod", "h")
    plan = Plan("prod", (Step(Action.UNCHANGED, kind, "web", "prod", want, seen),))
    (step,) = force_redeploy(plan, "asked").steps
    assert (step.action, step.reason) == (action, "asked")


@pytest.mark.parametrize(
    ("kind", "state", "expected"),
    [
        ("container", "running", None),
        ("container", "exited", Verdict(Action.REPLACE, "container is exited")),
        ("service", "anything", None),
        ("vm", "Running", None),
    ],
)
def test_the_state_rule_of_each_kind(kind: str, state: str, expected: Verdict | None) -> None:
    assert rules_for(kind).wrong_state({}, state) == expected


def test_a_halted_vm_asked_to_run_is_started_with_the_power_change_shown() -> None:
    verdict = rules_for("vm").wrong_state({"power": "running"}, "Halted")
    assert verdict is not None and verdict.action is Action.UPDATE
    assert verdict.reason == "VM is halted"
    assert [(c.path, c.old, c.new) for c in verdict.changes] == [("power", "halted", "running")]


@pytest.mark.parametrize(
    ("spec", "state", "fields", "expected"),
    [
        ({}, "Running", {"xenstore"}, Verdict(Action.UPDATE, "config changed")),
        ({}, "Halted", {"vcpus"}, Verdict(Action.UPDATE, "config changed")),
        (
            {},
            "Running",
            {"vcpus", "memory"},
            Verdict(
                Action.UPDATE, "changing vcpus, memory needs the VM halted: it will be rebooted"
            ),
        ),
        (
            {"on_change": "recreate"},
            None,
            {"networks"},
            Verdict(
                Action.REPLACE, "changing networks needs the VM halted and on_change is recreate"
            ),
        ),
        (
            {"on_change": "refuse"},
            "Running",
            {"memory"},
            Refusal("changing memory needs the VM halted and on_change is refuse"),
        ),
        ({}, "Running", {"template"}, Verdict(Action.REPLACE, "template changed")),
        (
            {"on_change": "refuse"},
            "Halted",
            {"template"},
            Refusal("changing the template needs a new VM and on_change is refuse"),
        ),
    ],
)
def test_the_change_rule_of_vms(
    spec: dict[str, str], state: str | None, fields: set[str], expected: Verdict | Refusal
) -> None:
    assert rules_for("vm").changed(spec, state, frozenset(fields), "config changed") == expected


def test_containers_are_replaced_and_services_updated_on_any_change() -> None:
    fields = frozenset({"image"})
    assert rules_for("container").changed({}, "running", fields, "r") == Verdict(
        Action.REPLACE, "r"
    )
    assert rules_for("service").changed({}, None, fields, "r") == Verdict(Action.UPDATE, "r")


def test_the_table_has_the_three_kinds() -> None:
    assert list(KINDS) == ["container", "service", "vm"]
