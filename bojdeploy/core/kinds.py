"""What a difference means for each kind of resource: the rules plans follow, one entry a kind.

The plan compares config hashes and specs the same way for every kind; what the comparison
calls for (replace a container, update a service in place, reboot or recreate a VM) is here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bojdeploy.core.actions import Action
from bojdeploy.core.diff import FieldChange
from bojdeploy.errors import PlanError

# Changing these fields of a running VM needs it halted; `on_change` decides how.
VM_HALT_FIELDS = ("vcpus", "memory", "networks")


@dataclass(frozen=True)
class Verdict:
    """The action a resource needs, why, and any change to show besides its spec's."""

    action: Action
    reason: str
    changes: tuple[FieldChange, ...] = ()


@dataclass(frozen=True)
class Refusal:
    """A change the manifest asks for but also forbids (a VM whose on_change is refuse)."""

    why: str


# (spec, observed state) -> a verdict when the resource is not in the state its spec asks for
StateRule = Callable[[Mapping[str, Any], str], Verdict | None]
# (spec, observed state or None, changed top-level fields, reason) -> what the change needs
ChangeRule = Callable[[Mapping[str, Any], str | None, frozenset[str], str], Verdict | Refusal]


@dataclass(frozen=True)
class KindRules:
    """How plans treat one kind: its state and change rules, and how it is named in errors."""

    wrong_state: StateRule
    changed: ChangeRule
    redeploy: Action  # what a redeploy of an unchanged resource does
    ownership: str = "io.bojdeploy.managed label"  # what marks a resource as managed
    rename_hint: str = "another metadata.name"  # how a manifest can name another resource


def _container_state(spec: Mapping[str, Any], state: str) -> Verdict | None:
    """A container that is not running is replaced (a stopped one is not restarted in place)."""
    return Verdict(Action.REPLACE, f"container is {state}") if state != "running" else None


def _container_change(
    spec: Mapping[str, Any], state: str | None, fields: frozenset[str], reason: str
) -> Verdict:
    """Any change replaces a container."""
    return Verdict(Action.REPLACE, reason)


def _no_state_rule(spec: Mapping[str, Any], state: str) -> Verdict | None:
    """A service has no state of its own to ask for: Swarm keeps its tasks running."""
    return None


def _service_change(
    spec: Mapping[str, Any], state: str | None, fields: frozenset[str], reason: str
) -> Verdict:
    """A service is updated in place: Swarm rolls its tasks."""
    return Verdict(Action.UPDATE, reason)


def _vm_state(spec: Mapping[str, Any], state: str) -> Verdict | None:
    """A VM whose power state is not spec.power is powered on or off."""
    power = str(spec.get("power", "running")).lower()
    if state.lower() == power:
        return None
    change = FieldChange("power", state.lower(), power)
    return Verdict(Action.UPDATE, f"VM is {state.lower()}", (change,))


def _vm_change(
    spec: Mapping[str, Any], state: str | None, fields: frozenset[str], reason: str
) -> Verdict | Refusal:
    """In place where Xen allows it; a new template or a halt goes by spec.on_change."""
    on_change = spec.get("on_change", "reboot")
    if "template" in fields:
        if on_change == "refuse":
            return Refusal("changing the template needs a new VM and on_change is refuse")
        return Verdict(Action.REPLACE, "template changed")
    halting = [f for f in VM_HALT_FIELDS if f in fields]
    # Offline the power state is unknown: assume running, the case that needs a halt.
    if not halting or (state or "running").lower() == "halted":
        return Verdict(Action.UPDATE, reason)
    needs = f"changing {', '.join(halting)} needs the VM halted"
    if on_change == "refuse":
        return Refusal(f"{needs} and on_change is refuse")
    if on_change == "recreate":
        return Verdict(Action.REPLACE, f"{needs} and on_change is recreate")
    return Verdict(Action.UPDATE, f"{needs}: it will be rebooted")


KINDS: dict[str, KindRules] = {
    "container": KindRules(
        _container_state,
        _container_change,
        redeploy=Action.REPLACE,
        rename_hint="spec.container_name or another metadata.name",
    ),
    "service": KindRules(_no_state_rule, _service_change, redeploy=Action.UPDATE),
    "vm": KindRules(
        _vm_state,
        _vm_change,
        redeploy=Action.UPDATE,
        ownership="bojdeploy ownership keys in other_config",
    ),
}


def rules_for(kind: str) -> KindRules:
    """The rules of `kind`; PlanError for a kind bojdeploy does not know."""
    try:
        return KINDS[kind]
    except KeyError:
        known = ", ".join(KINDS)
        raise PlanError(f"unknown kind {kind!r} (known kinds: {known})") from None
