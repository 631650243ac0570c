"""Rollback: redeploy the config a past deployment recorded, as a new deployment."""

from __future__ import annotations

from bojdeploy.core.config import RepoConfig
from bojdeploy.core.loader import LoadedManifest, manifest_from_record
from bojdeploy.core.plan import Desired, make_plan
from bojdeploy.core.secrets import Scrubber
from bojdeploy.deploy import Reporter, Run, apply_plan
from bojdeploy.drivers import Targets
from bojdeploy.engine import secret_values
from bojdeploy.errors import ManifestError, Problem, UsageError
from bojdeploy.gitrepo import GitInfo
from bojdeploy.settings import Settings
from bojdeploy.store.base import Deployment, StateStore


def find_target(
    store: StateStore, deployment_id: int | None, name: str | None, environment: str | None
) -> Deployment:
    """The deployment whose config to redeploy: by id, or the previous successful one by name."""
    if deployment_id is not None:
        record = store.get_deployment(deployment_id)
        if record is None:
            raise UsageError(f"no deployment with id {deployment_id}")
        if not record.config or record.config.get("deleted"):
            raise UsageError(f"deployment #{deployment_id} recorded no config to redeploy")
        return record
    assert name is not None and environment is not None
    done = store.list_deployments(environment=environment, name=name, status="completed", limit=200)
    if not done:
        raise UsageError(f"no successful deployment of {name!r} in {environment}")
    current = done[0]
    for record in done[1:]:
        if record.config_hash != current.config_hash and record.config:
            return record
    raise UsageError(
        f"{name!r} in {environment} has no earlier successful config than "
        f"deployment #{current.id} to roll back to"
    )


def rollback(
    store: StateStore,
    settings: Settings,
    report: Reporter,
    *,
    deployment_id: int | None = None,
    name: str | None = None,
    environment: str | None = None,
    config: RepoConfig | None = None,
) -> Run:
    """Redeploy a recorded config; the new row's rollback_from names the source deployment."""
    record = find_target(store, deployment_id, name, environment)
    assert record.config is not None
    manifest = manifest_from_record(
        record.config, record.manifest or f"deployment #{record.id}", record.environment
    )
    values = secret_values(manifest, settings.environ)
    missing = sorted(manifest.secret_names - set(values))
    if missing:
        raise ManifestError(
            [Problem(manifest.file, None, "", f"secret {n!r} is not set") for n in missing]
        )
    key = store.installation_key()
    desired = Desired(
        kind=manifest.kind,
        name=manifest.name,
        environment=record.environment,
        resource_name=manifest.resource_name,
        config_hash=manifest.config_hash(values, key),
        spec=manifest.redacted()["spec"],
        labels=manifest.redacted()["metadata"]["labels"],
        manifest=manifest.file,
        reason=f"rollback to the config of deployment #{record.id}",
    )
    targets = Targets(record.environment, settings, config or RepoConfig())
    try:
        return _redeploy(store, targets, record, manifest, desired, values, key, report)
    finally:
        targets.close()


def _redeploy(
    store: StateStore,
    targets: Targets,
    record: Deployment,
    manifest: LoadedManifest,
    desired: Desired,
    values: dict[str, str],
    key: bytes,
    report: Reporter,
) -> Run:
    observed = targets.observe({manifest.kind})
    plan = make_plan([desired], observed, environment=record.environment, full_scope=False)
    commit = record.git_commit or ""
    run = Run(
        store=store,
        drivers={manifest.kind: targets.driver(manifest.kind)},
        observe=targets.observe_one,
        info=GitInfo(commit, commit[:7], record.git_branch or "", "", record.git_repository or ""),
        manifests={(manifest.kind, manifest.name): manifest},
        secrets={(manifest.kind, manifest.name): values},
        scrub=Scrubber(values.values()),
        report=report,
        key=key,
        rollback_from=record.id,
        parallel=1,
    )
    apply_plan(run, plan)
    return run
