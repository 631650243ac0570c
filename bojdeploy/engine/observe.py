"""Observe the targets (or the records, offline) and plan: desired against actual."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from bojdeploy.core.loaded import LoadedManifest
from bojdeploy.core.plan import Observed, Plan, force_redeploy, make_plan
from bojdeploy.drivers import Targets
from bojdeploy.engine.confirm import confirm
from bojdeploy.engine.prepare import Prepared, desired_state
from bojdeploy.engine.workspace import Workspace
from bojdeploy.settings import Settings
from bojdeploy.store.base import Deployment, StateStore


def resource_name_of(record: Deployment) -> str:
    """The target-side name recorded in a deployment's config."""
    config = record.config or {}
    spec = config.get("spec") or {}
    if record.deployment_type == "container" and spec.get("container_name"):
        return str(spec["container_name"])
    return record.name


def observed_from_records(store: StateStore, environment: str) -> list[Observed]:
    """The last recorded desired state of each resource, as if observed (offline planning)."""
    return [
        Observed(
            kind=r.deployment_type,
            resource_name=resource_name_of(r),
            managed=True,
            name=r.name,
            environment=r.environment,
            config_hash=r.config_hash,
            spec=(r.config or {}).get("spec"),
            labels=((r.config or {}).get("metadata") or {}).get("labels", {}),
            id=str(r.id),
            manifest=r.manifest,
            source="record",
            repository=r.git_repository,
        )
        for r in store.latest_states(environment)
        if not (r.config or {}).get("deleted")
    ]


def with_recorded_specs(
    observed: Sequence[Observed], records: Sequence[Observed]
) -> list[Observed]:
    """Attach the recorded spec to live observations whose config hash matches, for field diffs."""
    by_key = {(r.kind, r.resource_name): r for r in records}
    out = []
    for obs in observed:
        rec = by_key.get((obs.kind, obs.resource_name))
        if rec is not None and obs.spec is None and rec.config_hash == obs.config_hash:
            obs = dataclasses.replace(obs, spec=rec.spec, labels=rec.labels)
        out.append(obs)
    return out


@dataclass(frozen=True)
class Recorded:
    """What a run reads from the store once: the installation key and the recorded states."""

    key: bytes
    states: list[Observed]


def recorded(store: StateStore, environment: str) -> Recorded:
    """The store's facts for one run of `environment` (one read each)."""
    return Recorded(store.installation_key(), observed_from_records(store, environment))


def kinds_to_observe(
    prepared: Prepared, records: Sequence[Observed], prune: bool, unfinished: set[str]
) -> set[str]:
    """The kinds whose targets a run contacts: those of its manifests, those with work a killed
    run left unfinished (`unfinished`: this run finishes it, whatever the push changed), and
    those of recorded resources a prune of this run could delete. No other (a Xen outage never
    blocks a container deploy); their records stand in for them, so orphans are still named."""
    kinds = {m.kind for m in prepared.selected} | unfinished
    if prune:
        full = prepared.workspace.explicit is None and prepared.selection.full
        deleted = set(prepared.selection.deleted)
        kinds |= {r.kind for r in records if full or r.manifest in deleted}
    return kinds


def observe(
    prepared: Prepared,
    store: StateStore,
    settings: Settings,
    *,
    offline: bool,
    targets: Targets | None = None,
    records: Sequence[Observed] | None = None,
    prune: bool = True,
) -> list[Observed]:
    """What exists: the targets (one list call per kind), or the recorded state when offline.

    `records`: the recorded states, when the caller has read them already.
    """
    if records is None:
        records = observed_from_records(store, prepared.environment)
    if offline:
        return list(records)
    unfinished = store.unfinished_kinds(prepared.environment)
    kinds = kinds_to_observe(prepared, records, prune, unfinished)
    own = targets is None
    targets = targets or Targets(prepared.environment, settings, prepared.workspace.config)
    try:
        live = targets.observe(kinds) if kinds else []
    finally:
        if own:
            targets.close()
    unobserved = [r for r in records if r.kind not in kinds]
    return with_recorded_specs(confirm(store, prepared.environment, live), records) + unobserved


def unfinished_elsewhere(prepared: Prepared, observed: Sequence[Observed]) -> list[LoadedManifest]:
    """Manifests outside the selection whose resource is unfinished: this run finishes them too.

    One whose secrets this run lacks is left alone: deploying it would drop a secret.
    """
    if prepared.narrowed or prepared.workspace.explicit is not None:
        return []  # the user chose what to deploy
    repository = prepared.workspace.info.repository
    unfinished = {
        (o.kind, o.resource_name)
        for o in observed
        if o.unfinished
        and o.managed
        and o.environment == prepared.environment
        and (not o.repository or not repository or o.repository == repository)
    }
    chosen = {(m.kind, m.name) for m in prepared.selected}
    return [
        m
        for m in prepared.result.manifests
        if (m.kind, m.resource_name) in unfinished
        and (m.kind, m.name) not in chosen
        and len(prepared.secrets_of(m)) == len(m.secret_names)
    ]


def unprunable(ws: Workspace) -> str:
    """Why this run must not prune, or "": its repository is only the folder's name.

    The action names the repository (`owner/name`), and so does a clone's `origin` remote; without
    either, the folder's name stands in for it on the labels and another checkout of that name on
    the same host would look like this one, so its resources may be someone else's.
    """
    if "/" in ws.info.repository:
        return ""
    return (
        f"this run's repository is unknown (no origin remote; the folder name "
        f"{ws.info.repository!r} stands in for it and may be another checkout's): "
        "add an origin remote to prune"
    )


def make_plan_for(
    prepared: Prepared,
    store: StateStore,
    settings: Settings,
    *,
    offline: bool = False,
    prune: bool | None = None,
    targets: Targets | None = None,
    force: bool = False,
    known: Recorded | None = None,
) -> Plan:
    """Observe, then make the plan for the prepared manifests (force: redeploy unchanged ones).

    `known`: the store's facts, when the caller has read them already (apply reads them once).
    """
    known = known or recorded(store, prepared.environment)
    pruning = prepared.workspace.config.prune if prune is None else prune
    refusal = unprunable(prepared.workspace)
    observed = observe(
        prepared,
        store,
        settings,
        offline=offline,
        targets=targets,
        records=known.states,
        prune=pruning and not refusal,
    )
    prepared.selected += unfinished_elsewhere(prepared, observed)
    desired = desired_state(prepared, known.key)
    deleted_files = set(prepared.selection.deleted)
    deleted_names = {
        (o.kind, o.name or o.resource_name) for o in observed if o.manifest in deleted_files
    }
    plan = make_plan(
        desired,
        observed,
        environment=prepared.environment,
        prune=pruning,
        full_scope=prepared.workspace.explicit is None and prepared.selection.full,
        deleted_names=deleted_names,
        offline=offline,
        repository=prepared.workspace.info.repository or None,
        unprunable=refusal,
    )
    return force_redeploy(plan) if force else plan
