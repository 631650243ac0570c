"""The one orchestrator: load, select, observe, plan, apply, record; for every front end."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from bojdeploy.confirm import confirm
from bojdeploy.core.changes import Selected, Selection
from bojdeploy.core.loader import LoadedManifest
from bojdeploy.core.plan import Desired, Observed, Plan, force_redeploy, make_plan
from bojdeploy.core.secrets import Scrubber, secret_env
from bojdeploy.core.validation import LoadResult, dependency_levels
from bojdeploy.deploy import Reporter, Run, apply_plan, refuse_vm_deletes
from bojdeploy.drivers import Targets
from bojdeploy.drivers.base import Driver
from bojdeploy.errors import ManifestError, PlanError, UsageError
from bojdeploy.protection import check_branch, check_deletes
from bojdeploy.settings import Settings
from bojdeploy.store.base import Deployment, StateStore
from bojdeploy.workspace import Compare, Workspace


@dataclass
class Prepared:
    """Validated manifests of one environment and the ones this run considers."""

    workspace: Workspace
    environment: str
    result: LoadResult
    selection: Selection
    selected: list[LoadedManifest]
    narrowed: bool = False  # only manifests named explicitly

    @property
    def warnings(self) -> list[str]:
        """Human warnings (missing secrets for a plan, fallbacks of change detection)."""
        chosen = set(self.selection.paths())
        out = [str(p) for p in self.result.warnings if p.file in chosen]
        if not self.workspace.manifest_files():
            out.append(self.workspace.nothing_found())
        if self.selection.note:
            out.append(self.selection.note)
        return out


def prepare(
    ws: Workspace,
    environment: str,
    environ: Mapping[str, str],
    *,
    changed_since: str | None = None,
    require_secrets: bool = False,
    fallback: Compare | None = None,
    names: Collection[str] = (),
) -> Prepared:
    """Load and validate everything, then select (only `names` if given); raises ManifestError."""
    result = ws.load(environment, environ)
    selection = ws.select(result, changed_since, fallback)
    if names:
        selection = narrow(selection, result, names, environment)
    chosen = set(selection.paths())
    if require_secrets:
        result.problems = [
            dataclasses.replace(p, warning=False) if p.warning and p.file in chosen else p
            for p in result.problems
        ]
    if result.errors:
        raise ManifestError(sorted(result.errors))
    ordered = [m for level in dependency_levels(result.manifests) for m in level]
    selected = [m for m in ordered if m.file in chosen and (not names or m.name in names)]
    return Prepared(ws, environment, result, selection, selected, narrowed=bool(names))


def narrow(
    selection: Selection, result: LoadResult, names: Collection[str], environment: str
) -> Selection:
    """Only the manifests called `names` (never a full selection: nothing else is pruned)."""
    chosen = sorted({m.file for m in result.manifests if m.name in names})
    missing = sorted(set(names) - {m.name for m in result.manifests})
    if missing:
        raise UsageError(f"no manifest named {', '.join(missing)} in environment {environment}")
    why = f"{', '.join(sorted(names))} named explicitly"
    return Selection(tuple(Selected(p, selection.reason_for(p) or why) for p in chosen), (), False)


def secret_values(m: LoadedManifest, environ: Mapping[str, str]) -> dict[str, str]:
    """The values of the secrets a manifest uses (missing ones left out)."""
    values = {name: secret_env(name, environ) for name in m.secret_names}
    return {k: v for k, v in values.items() if v is not None}


def desired_state(prepared: Prepared, key: bytes, environ: Mapping[str, str]) -> list[Desired]:
    """The selected manifests as Desired values (redacted spec, keyed config hash)."""
    out = []
    for m in prepared.selected:
        redacted, values = m.redacted(), secret_values(m, environ)
        out.append(
            Desired(
                kind=m.kind,
                name=m.name,
                environment=m.environment,
                resource_name=m.resource_name,
                config_hash=m.config_hash(values, key),
                spec=redacted["spec"],
                labels=redacted["metadata"]["labels"],
                manifest=m.file,
                reason=prepared.selection.reason_for(m.file) or "",
                depends_on=tuple(m.manifest.metadata.depends_on),
                missing_secrets=tuple(sorted(m.secret_names - set(values))),
            )
        )
    return out


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


def apply(
    prepared: Prepared,
    store: StateStore,
    settings: Settings,
    report: Reporter,
    *,
    prune: bool | None = None,
    parallel: int = 4,
    rollback_from: int | None = None,
    force: bool = False,
    allow_delete: bool = False,
) -> tuple[Plan, Run]:
    """Plan against the live targets and apply it; every step recorded, failures contained."""
    config, env = prepared.workspace.config, prepared.environment
    check_branch(config, env, prepared.workspace.info.branch, "apply")
    targets = Targets(prepared.environment, settings, prepared.workspace.config)
    try:
        the_plan = make_plan_for(
            prepared, store, settings, prune=prune, targets=targets, force=force
        )
        check_deletes(config, env, the_plan, allow_delete)
        refused = refuse_vm_deletes(the_plan, prepared.workspace.config.policy.allow_vm_destroy)
        if refused:
            raise PlanError(
                f"refusing to destroy VM(s) {', '.join(refused)}: set policy.allow_vm_destroy"
            )
        settled = {
            (s.kind, s.resource_name): s.observed.deployment_id
            for s in the_plan.steps
            if s.observed is not None and not s.observed.unfinished
        }
        observer = _recheck_observer(prepared.environment, store, targets, settled)
        run = _run(prepared, store, settings, report, targets, observer, rollback_from, parallel)
        run.force = force
        apply_plan(run, the_plan)
    finally:
        targets.close()
    return the_plan, run


def _run(
    prepared: Prepared,
    store: StateStore,
    settings: Settings,
    report: Reporter,
    targets: Targets,
    observer: Callable[[str, str], list[Observed]],
    rollback_from: int | None,
    parallel: int,
) -> Run:
    scrub = Scrubber()
    secrets = {}
    for m in prepared.selected:
        secrets[(m.kind, m.name)] = secret_values(m, settings.environ)
        scrub.add(secrets[(m.kind, m.name)].values())
    return Run(
        store=store,
        drivers=_LazyDrivers(targets),
        observe=observer,
        info=prepared.workspace.info,
        manifests={(m.kind, m.name): m for m in prepared.selected},
        secrets=secrets,
        scrub=scrub,
        report=report,
        key=store.installation_key(),
        rollback_from=rollback_from,
        parallel=parallel,
        target=targets.record,
    )


def _recheck_observer(
    environment: str,
    store: StateStore,
    targets: Targets,
    settled: Mapping[tuple[str, str], int | None],
) -> Callable[[str, str], list[Observed]]:
    """Observe one resource under its lock, confirmed by its records, with its recorded spec.

    `settled`: the resources the plan found finished, with the deployment that made them. Such a
    resource needs no look for a container's `.previous` (a run killed since would have left a
    new container or none, and an interrupted row), nor, while the same deployment's resource is
    there, another query (a confirmed deployment stays confirmed).
    """
    records = observed_from_records(store, environment)

    def observe_one(kind: str, name: str) -> list[Observed]:
        live = targets.observe_one(kind, name, aside=(kind, name) not in settled)
        unchanged = all(
            (o.kind, o.resource_name) in settled
            and settled[(o.kind, o.resource_name)] == o.deployment_id
            and not o.unfinished
            for o in live
        )
        return with_recorded_specs(
            live if unchanged else confirm(store, environment, live), records
        )

    return observe_one


class _LazyDrivers(dict):  # type: ignore[type-arg]
    """kind -> driver, made on first use so unused kinds need no connection."""

    def __init__(self, targets: Targets):
        super().__init__()
        self.targets = targets

    def __missing__(self, kind: str) -> Driver:
        driver = self[kind] = self.targets.driver(kind)
        return driver
