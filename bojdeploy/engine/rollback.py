"""Rollback: redeploy the config a past deployment recorded, as a new deployment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bojdeploy.core.fleet import DEFAULT_HOST, record_host
from bojdeploy.core.loaded import LoadedManifest, manifest_from_record
from bojdeploy.core.plan import make_plan
from bojdeploy.core.secrets import Scrubber
from bojdeploy.drivers import Targets
from bojdeploy.engine.apply import Reporter, Run, apply_plan
from bojdeploy.engine.fleet import HostStore, host_reporter
from bojdeploy.engine.gitrepo import GitInfo
from bojdeploy.engine.prepare import secret_values, to_desired
from bojdeploy.engine.protection import check_branch, check_deletes
from bojdeploy.engine.workspace import Workspace
from bojdeploy.errors import ManifestError, Problem, UsageError
from bojdeploy.settings import Settings
from bojdeploy.store.base import Deployment, StateStore


def same_repository(a: str, b: str) -> bool:
    """Whether two repository names ('owner/name', any case, '.git' or not) are the same."""

    def norm(value: str) -> str:
        return value.strip().strip("/").removesuffix(".git").casefold()

    return norm(a) == norm(b)


def find_target(
    store: StateStore,
    deployment_id: int | None,
    name: str | None,
    environment: str | None,
    repository: str,
    host: str | None = None,
) -> Deployment:
    """The deployment whose config to redeploy: by id, or the previous successful one by name
    (on `host` of a fleet: a name deployed on several hosts needs one, see `one_host`).

    Only deployments of `repository` qualify: another repository's record is refused.
    """
    if deployment_id is not None:
        record = store.get_deployment(deployment_id)
        if record is None:
            raise UsageError(f"no deployment with id {deployment_id}")
        if record.git_repository and not same_repository(record.git_repository, repository):
            raise UsageError(
                f"deployment #{deployment_id} was made from repository {record.git_repository}, "
                f"not {repository}: roll it back from a checkout of {record.git_repository}"
            )
        if not record.config or record.config.get("deleted"):
            raise UsageError(f"deployment #{deployment_id} recorded no config to redeploy")
        return record
    assert name is not None and environment is not None
    done = [
        r
        for r in store.list_deployments(
            environment=environment, name=name, status="completed", limit=200
        )
        if not r.git_repository or same_repository(r.git_repository, repository)
    ]
    done = one_host(done, name, environment, host)
    if not done:
        raise UsageError(f"no successful deployment of {name!r} in {environment} from {repository}")
    current = done[0]
    for record in done[1:]:
        if record.config_hash != current.config_hash and record.config:
            return record
    where = f" on host {current.host}" if current.host else ""
    raise UsageError(
        f"{name!r} in {environment}{where} has no earlier successful config than "
        f"deployment #{current.id} to roll back to"
    )


def one_host(
    done: list[Deployment], name: str, environment: str, host: str | None
) -> list[Deployment]:
    """The records of `host` ('default': the environment's own target); without one, those of
    the only host `name` was deployed on. Several hosts and none chosen is an error naming them:
    each host may be on another config, so which one goes back is the user's choice."""
    hosts = list(dict.fromkeys(r.host or DEFAULT_HOST for r in done))
    if host is not None:
        mine = [r for r in done if r.host == record_host(host)]
        if done and not mine:
            raise UsageError(
                f"{name!r} in {environment} has no successful deployment on host {host} "
                f"(deployed on: {', '.join(sorted(hosts))})"
            )
        return mine
    if len(hosts) > 1:
        raise UsageError(
            f"{name!r} in {environment} is deployed on several hosts: {', '.join(sorted(hosts))}; "
            "choose one with --host HOST (or roll back a deployment by its id)"
        )
    return done


def rollback(
    store: StateStore,
    settings: Settings,
    report: Reporter,
    *,
    workspace: Workspace,
    record: Deployment,
    allow_delete: bool = False,
    reason: str | None = None,
) -> Run:
    """Redeploy the config `record` holds (see `find_target`) where it was deployed, as a new
    deployment whose rollback_from names it (`reason`: why, default a rollback to it)."""
    info, config = workspace.info, workspace.config
    check_branch(config, record.environment, info.branch, "rollback")
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
    host = record.host  # a fleet's record goes back to the host it ran on
    if host:
        store = HostStore(store, host)  # type: ignore[assignment]
        report = host_reporter(report, host)
    where = record.config.get("target")
    targets = Targets(record.environment, settings, config, recorded=where, host=host)
    current = Targets(record.environment, settings, config, host=host)
    for warning in target_mismatch(record, targets, current):
        report(f"{manifest.kind}/{manifest.name}", "warn", warning)
    try:
        observed = targets.observe({manifest.kind})
        reason = reason or f"rollback to the config of deployment #{record.id}"
        plan = make_plan(
            [to_desired(manifest, values, key, reason)],
            observed,
            environment=record.environment,
            full_scope=False,
        )
        check_deletes(config, record.environment, plan, allow_delete)
        run = rollback_run(store, targets, record, manifest, values, key, report)
        apply_plan(run, plan)
        for outcome in run.outcomes:  # outcomes and commit statuses name the host
            outcome.host = host
        return run
    finally:
        targets.close()


def target_mismatch(record: Deployment, used: Targets, current: Targets) -> list[str]:
    """Lines that say where the rollback goes when that is not where apply or the record points."""
    kind = record.deployment_type
    recorded = (record.config or {}).get("target")
    where, now = used.record(kind), current.record(kind)
    if not recorded:
        return [f"deployment #{record.id} recorded no target: rolling back on {_describe(where)}"]
    if dict(recorded) != where:
        return [
            f"deployment #{record.id} was made on {_describe(recorded)}; rolling back on "
            f"{_describe(where)} (an explicit setting wins)"
        ]
    if now != where:
        return [
            f"rolling back on {_describe(where)}, where deployment #{record.id} was made; "
            f"apply would now use {_describe(now)}"
        ]
    return []


def _describe(target: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in target.items() if v) or "the default target"


def rollback_run(
    store: StateStore,
    targets: Targets,
    record: Deployment,
    manifest: LoadedManifest,
    values: dict[str, str],
    key: bytes,
    report: Reporter,
) -> Run:
    """The run that redeploys `record`'s config with `targets`."""
    commit = record.git_commit or ""
    return Run(
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
        target=targets.record,
        host=targets.host,
    )
