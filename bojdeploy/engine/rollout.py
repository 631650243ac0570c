"""Rolling a fleet out: host after host (`spec.rollout.parallel` at a time), each host's health
waits the gate for the next; a failure stops the rollout, and `on_failure: rollback` also puts
back the previous config on every host already done."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bojdeploy.core.fleet import DEFAULT_HOST, Rollout, hosts_of, record_host
from bojdeploy.core.loaded import LoadedManifest, manifest_from_record
from bojdeploy.core.manifest import ContainerManifest
from bojdeploy.core.plan import Plan, make_plan
from bojdeploy.drivers import Targets
from bojdeploy.engine.apply import Outcome, Reporter, Run, apply_plan
from bojdeploy.engine.deploy import apply as apply_on_host
from bojdeploy.engine.fleet import (
    HostStore,
    connected,
    fleet_plan,
    for_host,
    host_reporter,
    hosts_needed,
    is_fleet,
    merged,
)
from bojdeploy.engine.observe import make_plan_for as make_host_plan
from bojdeploy.engine.prepare import Prepared, secret_values, to_desired
from bojdeploy.engine.rollback import rollback_run
from bojdeploy.errors import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE
from bojdeploy.settings import Settings
from bojdeploy.store.base import Deployment, StateStore


@dataclass
class FleetRun:
    """The runs of every host: their outcomes (each with its host) and the exit code."""

    runs: list[Run] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No resource failed on any host."""
        return all(o.status != "failed" for o in self.outcomes)

    @property
    def exit_code(self) -> int:
        """As a single run's: 0 done, 3 nothing changed because a system was unreachable, else 1."""
        if any(run.unrecorded for run in self.runs):
            return EXIT_FAILED
        if self.ok:
            return EXIT_OK
        failed = [o for o in self.outcomes if o.status == "failed"]
        changed = any(o.status == "completed" for o in self.outcomes)
        return (
            EXIT_UNREACHABLE if all(o.unreachable for o in failed) and not changed else EXIT_FAILED
        )

    def unrecorded_notes(self) -> list[str]:
        """One line per deployment whose records could not be written, on any host."""
        return [note for run in self.runs for note in run.unrecorded_notes()]


def rollout_of(manifests: Sequence[LoadedManifest]) -> Rollout:
    """The run's rollout: the smallest `parallel` of its multi-host containers (default 1)."""
    given = [
        m.manifest.spec.rollout
        for m in manifests
        if isinstance(m.manifest, ContainerManifest) and m.manifest.spec.rollout is not None
    ]
    return Rollout(parallel=min((r.parallel for r in given), default=1))


def apply_fleet(
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
) -> tuple[Plan, FleetRun]:
    """Connect to every host first (one unreachable: ConnectError, nothing changed), plan every
    host, then roll out host after host; stop at the first host where something failed."""
    hosts = hosts_needed(prepared, store, prune)
    step = rollout_of(prepared.selected).parallel
    fleet = FleetRun()
    plans: list[tuple[str, Plan]] = []
    with connected(prepared, store, settings, hosts, prune) as targets:
        planned = fleet_plan(prepared, store, settings, prune=prune, force=force, targets=targets)
        done: list[str] = []
        for start in range(0, len(hosts), step):
            batch = hosts[start : start + step]

            def deploy(host: str) -> tuple[Plan, Run]:
                return apply_on_host(
                    for_host(prepared, host),
                    HostStore(store, host),  # type: ignore[arg-type]
                    settings,
                    host_reporter(report, host),
                    prune=prune,
                    parallel=parallel,
                    rollback_from=rollback_from,
                    force=force,
                    allow_delete=allow_delete,
                    targets=targets[host],
                )

            with ThreadPoolExecutor(max_workers=len(batch)) as pool:
                results = list(pool.map(deploy, batch))
            for host, (plan, run) in zip(batch, results, strict=True):
                plans.append((host, plan))
                fleet.runs.append(run)
                fleet.outcomes += [_on(o, host) for o in run.outcomes]
            done += batch
            failed = [h for h, (_, run) in zip(batch, results, strict=True) if not run.ok]
            if failed:
                where = ", ".join(failed)
                for host in hosts[len(done) :]:
                    fleet.outcomes += _not_rolled_out(prepared, host, where, report)
                _roll_back_done(prepared, store, settings, report, targets, fleet, failed)
                break
    shown = merged(prepared.environment, plans)
    return dataclasses.replace(shown, orphans=planned.orphans, unpruned=planned.unpruned), fleet


def _on(outcome: Outcome, host: str) -> Outcome:
    outcome.host = record_host(host)
    return outcome


def _not_rolled_out(prepared: Prepared, host: str, failed: str, report: Reporter) -> list[Outcome]:
    """Outcomes of the manifests a stopped rollout did not take to `host` (nothing recorded)."""
    why = f"not rolled out: the rollout stopped after a failure on host {failed}"
    out = []
    for m in prepared.selected:
        if host in hosts_of(m):
            host_reporter(report, host)(f"{m.kind}/{m.name}", "warn", why)
            out.append(Outcome(m.kind, m.name, "apply", "skipped", why, host=record_host(host)))
    return out


def _roll_back_done(
    prepared: Prepared,
    store: StateStore,
    settings: Settings,
    report: Reporter,
    targets: dict[str, Targets],
    fleet: FleetRun,
    failed: Sequence[str],
) -> None:
    """`on_failure: rollback`: containers this run changed on a host that did not fail get the
    config of their previous successful deployment there again."""
    wanted = {
        m.name
        for m in prepared.selected
        if isinstance(m.manifest, ContainerManifest)
        and m.manifest.spec.rollout is not None
        and m.manifest.spec.rollout.on_failure == "rollback"
    }
    bad = {record_host(h) for h in failed}
    changed = [
        o
        for o in fleet.outcomes
        if o.kind == "container"
        and o.name in wanted
        and o.status == "completed"
        and o.host not in bad
        and o.deployment_id is not None
    ]
    for outcome in changed:
        host = outcome.host or DEFAULT_HOST
        scoped = HostStore(store, host)
        say = host_reporter(report, host)
        previous = _previous(scoped, prepared.environment, outcome)
        if previous is None:
            say(f"container/{outcome.name}", "warn", "no earlier config to roll back to")
            continue
        run = _redeploy(scoped, settings, say, targets[host], previous)
        fleet.runs.append(run)
        fleet.outcomes += [_on(o, host) for o in run.outcomes]


def _previous(store: HostStore, environment: str, outcome: Outcome) -> Deployment | None:
    """The last successful deployment on the host before the one this run made."""
    records = store.successful_deployments(environment, outcome.kind, outcome.name, 50)
    made = next((r for r in records if r.id == outcome.deployment_id), None)
    for record in records:
        if made and record.id < made.id and record.config_hash != made.config_hash:
            return record if record.config else None
    return None


def _redeploy(
    store: HostStore, settings: Settings, report: Reporter, targets: Targets, record: Deployment
) -> Run:
    """Deploy `record`'s config again on the host `targets` reach."""
    assert record.config is not None
    manifest = manifest_from_record(
        record.config, record.manifest or f"deployment #{record.id}", record.environment
    )
    values = secret_values(manifest, settings.environ)
    key = store.installation_key()
    reason = f"rollout failed elsewhere: back to the config of deployment #{record.id}"
    observed = targets.observe_one(manifest.kind, manifest.resource_name)
    plan = make_plan(
        [to_desired(manifest, values, key, reason)],
        observed,
        environment=record.environment,
        full_scope=False,
    )
    run = rollback_run(store, targets, record, manifest, values, key, report)  # type: ignore[arg-type]
    apply_plan(run, plan)
    return run


def apply(
    prepared: Prepared, store: StateStore, settings: Settings, report: Reporter, **options: Any
) -> tuple[Plan, Run | FleetRun]:
    """The run every front end starts: a fleet's rollout, or the one target's apply."""
    if is_fleet(prepared):
        return apply_fleet(prepared, store, settings, report, **options)
    return apply_on_host(prepared, store, settings, report, **options)


def make_plan_for(
    prepared: Prepared, store: StateStore, settings: Settings, **options: Any
) -> Plan:
    """The plan of a run: every host of a fleet (steps marked `@host`), or the one target."""
    if is_fleet(prepared) and options.get("targets") is None:
        options.pop("targets", None)
        options.pop("known", None)
        return fleet_plan(prepared, store, settings, **options)
    return make_host_plan(prepared, store, settings, **options)
