"""Drift: the recorded desired state of an environment against what runs on its targets."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from bojdeploy.core.plan import Observed
from bojdeploy.drivers import Targets
from bojdeploy.engine.confirm import confirm
from bojdeploy.engine.fleet import HostStore
from bojdeploy.engine.observe import resource_name_of
from bojdeploy.engine.rollback import same_repository
from bojdeploy.engine.unmanaged import (
    listed_kinds,
    observe_listed,
    unmanaged_detail,
    unmanaged_of,
)
from bojdeploy.engine.workspace import Workspace
from bojdeploy.settings import Settings
from bojdeploy.store.base import Deployment, StateStore


@dataclass
class DriftItem:
    """One resource: in sync, or how it drifted; or one bojdeploy does not manage (no record)."""

    environment: str
    kind: str
    name: str | None  # the manifest's; None for an unmanaged resource
    resource_name: str
    deployment_id: int | None
    # in sync | missing | unfinished | stopped | running (meant halted) | config or image differs;
    # unmanaged (on the target, not bojdeploy's) | not checked (listing them failed); never drift
    state: str
    detail: str = ""
    host: str = ""  # a named host of a fleet; "" for the environment's default target

    @property
    def drifted(self) -> bool:
        """Whether what runs differs from what was recorded."""
        return self.state not in ("in sync", "unmanaged", "not checked")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (`host` on a named host)."""
        values = {k: v for k, v in asdict(self).items() if k != "host" or v}
        return {**values, "drifted": self.drifted}


def deployed_facts(store: StateStore, record: Deployment) -> dict[str, Any]:
    """What the deployment that put this config in place recorded (unchanged rows record none)."""
    facts = _driver_facts(record)
    if facts:
        return facts
    for earlier in store.successful_deployments(
        record.environment, record.deployment_type, record.name, limit=20
    ):
        if earlier.config_hash == record.config_hash and (facts := _driver_facts(earlier)):
            return facts
    return {}


def _driver_facts(record: Deployment) -> dict[str, Any]:
    """What the driver recorded (every row also keeps the bojdeploy version, no fact of it)."""
    deployed = (record.config or {}).get("deployed") or {}
    return {k: v for k, v in deployed.items() if k != "bojdeploy_version"}


def compare(store: StateStore, record: Deployment, live: Observed | None) -> tuple[str, str]:
    """How one recorded resource compares with its live observation."""
    if live is None:
        return "missing", "not found on the target"
    if not live.managed:
        return "missing", f"a {live.kind} of that name that bojdeploy does not manage holds it"
    [live] = confirm(store, record.environment, [live])
    if live.unfinished:
        return "unfinished", live.unfinished
    wanted = str(((record.config or {}).get("spec") or {}).get("power", "running"))
    if live.state is not None and live.state.lower() != wanted:
        return "stopped" if wanted == "running" else "running", f"state is {live.state}"
    if live.config_hash != record.config_hash:
        return (
            "config differs",
            f"config hash {str(live.config_hash)[:12]} != recorded {str(record.config_hash)[:12]}",
        )
    deployed = deployed_facts(store, record)
    expected = deployed.get("image_id") or deployed.get("image")
    if live.image_id and expected and live.image_id != expected:
        return "image differs", f"runs {live.image_id}, deployed {expected}"
    return "in sync", ""


def drift_report(
    store: StateStore,
    settings: Settings,
    environment: str | None,
    workspace: Workspace,
    *,
    unmanaged: bool = False,
) -> list[DriftItem]:
    """Compare this repository's recorded resources with its targets (as apply reaches them).

    unmanaged: also list what the targets hold that bojdeploy does not manage (VMs; see
    engine.unmanaged), from the same observation, for `environment` even without records.
    """
    repository = workspace.info.repository

    def mine(owner: str | None) -> bool:
        return not owner or same_repository(owner, repository)

    if environment:
        envs = [environment]
    else:  # one query: each environment and repository once, however many rows there are
        envs = sorted({env for env, owner in store.environment_repositories() if mine(owner)})
    items: list[DriftItem] = []
    for env in envs:
        records = [
            r
            for r in store.latest_states(env)
            if mine(r.git_repository) and not (r.config or {}).get("deleted")
        ]
        if not (records or unmanaged):
            continue
        named = [r for r in records if r.host]
        default = [r for r in records if not r.host]
        targets = Targets(env, settings, workspace.config)
        listed = listed_kinds(targets) if unmanaged else set()
        if default or listed:
            items += _environment_drift(store, targets, default, listed)
        for host in dict.fromkeys(r.host for r in named):  # each host of a fleet on its own
            there = [r for r in named if r.host == host]
            scoped = HostStore(store, host)
            on_host = Targets(env, settings, workspace.config, host=host)
            found = _environment_drift(scoped, on_host, there, set())  # type: ignore[arg-type]
            items += [dataclasses.replace(i, host=host) for i in found]
    return items


def _environment_drift(
    store: StateStore, targets: Targets, records: list[Deployment], listed: set[str]
) -> list[DriftItem]:
    kinds = {r.deployment_type for r in records}
    try:
        live = targets.observe(kinds)  # an unreachable target of a record: exit 3
        more, unchecked = observe_listed(targets, listed - kinds)
    finally:
        targets.close()
    by_key = {(o.kind, o.resource_name): o for o in live}
    items = []
    for r in records:
        resource = resource_name_of(r)
        state, detail = compare(store, r, by_key.get((r.deployment_type, resource)))
        recorded = (r.config or {}).get("target")
        checked = targets.record(r.deployment_type)
        if recorded and dict(recorded) != checked:
            moved = f"deployed to {_where(recorded)}, checked on {_where(checked)}"
            detail = f"{detail}; {moved}" if detail else moved
        items.append(
            DriftItem(targets.environment, r.deployment_type, r.name, resource, r.id, state, detail)
        )
    env = targets.environment
    for obs in unmanaged_of(live + more, listed):
        detail = unmanaged_detail(obs)
        items.append(DriftItem(env, obs.kind, None, obs.resource_name, None, "unmanaged", detail))
    for kind, why in sorted(unchecked.items()):
        items.append(DriftItem(env, kind, None, "-", None, "not checked", why))
    return items


def _where(target: Mapping[str, Any]) -> str:
    return ", ".join(str(v) for v in target.values() if v) or "the default target"
