"""Plan against the live targets and apply that plan: the run every front end starts."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from bojdeploy.core.plan import Observed, Plan
from bojdeploy.core.secrets import Scrubber
from bojdeploy.drivers import Targets
from bojdeploy.drivers.base import Driver
from bojdeploy.engine.apply import Reporter, Run, apply_plan, refuse_vm_deletes
from bojdeploy.engine.confirm import confirm
from bojdeploy.engine.observe import Recorded, make_plan_for, recorded, with_recorded_specs
from bojdeploy.engine.prepare import Prepared
from bojdeploy.engine.protection import check_branch, check_deletes
from bojdeploy.engine.unchanged import quick_unchanged
from bojdeploy.errors import PlanError
from bojdeploy.settings import Settings
from bojdeploy.store.base import StateStore


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
    targets: Targets | None = None,
    planned: tuple[Recorded, Plan] | None = None,
) -> tuple[Plan, Run]:
    """Plan against the live targets and apply it; every step recorded, failures contained.

    `targets`: connections the caller made (and closes), e.g. one host of a fleet; `planned`:
    the records and plan the caller made with them (a fleet's pre-flight), applied as they are:
    each step still observes its resource again under its lock before changing it.
    """
    config, env = prepared.workspace.config, prepared.environment
    check_branch(config, env, prepared.workspace.info.branch, "apply")
    own = targets is None
    targets = targets or Targets(prepared.environment, settings, prepared.workspace.config)
    try:
        if planned is not None:
            known, the_plan = planned
        else:
            known = recorded(store, env)  # read once: the plan and every re-check use them
            the_plan = make_plan_for(
                prepared, store, settings, prune=prune, targets=targets, force=force, known=known
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
        observer = _recheck_observer(env, store, targets, settled, known.states)
        run = _run(prepared, store, known.key, report, targets, observer, rollback_from, parallel)
        run.force = force
        run.quick = frozenset() if force else quick_unchanged(store, env, the_plan, run.host)
        apply_plan(run, the_plan)
    finally:
        if own:
            targets.close()
    return the_plan, run


def _run(
    prepared: Prepared,
    store: StateStore,
    key: bytes,
    report: Reporter,
    targets: Targets,
    observer: Callable[[str, str], list[Observed]],
    rollback_from: int | None,
    parallel: int,
) -> Run:
    secrets = {(m.kind, m.name): prepared.secrets_of(m) for m in prepared.selected}
    return Run(
        store=store,
        drivers=_LazyDrivers(targets),
        observe=observer,
        info=prepared.workspace.info,
        manifests={(m.kind, m.name): m for m in prepared.selected},
        secrets=secrets,
        scrub=Scrubber(prepared.secret_texts),
        report=report,
        key=key,
        rollback_from=rollback_from,
        parallel=parallel,
        target=targets.record,
        host=targets.host,
    )


def _recheck_observer(
    environment: str,
    store: StateStore,
    targets: Targets,
    settled: Mapping[tuple[str, str], int | None],
    records: Sequence[Observed],
) -> Callable[[str, str], list[Observed]]:
    """Observe one resource under its lock, confirmed by its records, with its recorded spec.

    `settled`: the resources the plan found finished, with the deployment that made them. Such a
    resource needs no look for a container's `.previous` (a run killed since would have left a
    new container or none, and an interrupted row), nor, while the same deployment's resource is
    there, another query (a confirmed deployment stays confirmed).
    """

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
