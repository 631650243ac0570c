"""Observe the targets (or the records, offline) and plan: desired against actual."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from bojdeploy.core.loaded import LoadedManifest
from bojdeploy.core.plan import Observed, Plan, force_redeploy, make_plan
from bojdeploy.drivers import Targets
from bojdeploy.engine.confirm import confirm
from bojdeploy.engine.prepare import Prepared, desired_state, secret_values
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


def observe(
    prepared: Prepared,
    store: StateStore,
    settings: Settings,
    *,
    offline: bool,
    targets: Targets | None = None,
) -> list[Observed]:
    """What exists: the targets (one list call per kind), or the recorded state when offline."""
    records = observed_from_records(store, prepared.environment)
    if offline:
        return records
    own = targets is None
    targets = targets or Targets(prepared.environment, settings, prepared.workspace.config)
    try:
        live = targets.observe({m.kind for m in prepared.selected} | {r.kind for r in records})
    finally:
        if own:
            targets.close()
    return with_recorded_specs(confirm(store, prepared.environment, live), records)


def unfinished_elsewhere(
    prepared: Prepared, observed: Sequence[Observed], environ: Mapping[str, str]
) -> list[LoadedManifest]:
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
        and len(secret_values(m, environ)) == len(m.secret_names)
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
) -> Plan:
    """Observe, then make the plan for the prepared manifests (force: redeploy unchanged ones)."""
    key = store.installation_key()
    observed = observe(prepared, store, settings, offline=offline, targets=targets)
    prepared.selected += unfinished_elsewhere(prepared, observed, settings.environ)
    desired = desired_state(prepared, key, settings.environ)
    deleted_files = set(prepared.selection.deleted)
    deleted_names = {
        (o.kind, o.name or o.resource_name) for o in observed if o.manifest in deleted_files
    }
    plan = make_plan(
        desired,
        observed,
        environment=prepared.environment,
        prune=prepared.workspace.config.prune if prune is None else prune,
        full_scope=prepared.workspace.explicit is None and prepared.selection.full,
        deleted_names=deleted_names,
        offline=offline,
        repository=prepared.workspace.info.repository or None,
        unprunable=unprunable(prepared.workspace),
    )
    return force_redeploy(plan) if force else plan
