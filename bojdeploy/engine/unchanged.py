"""Unchanged resources whose records confirm what runs: no lock, no second look, one batch write.

A no-op run of many manifests must not cost a lock, an inspect and three writes per resource. A
step qualifies only when everything says it is done: the plan found it unchanged on the target
(the desired config hash on its label, in the state its kind wants, nothing left half-done), the
deployment named on its label is confirmed by this database's records (a label alone never
means done), and no deployment of it is pending or running (another run at work on it, or one
that was killed: those go the locked way, which marks a killed one interrupted). On a fleet
all of it holds per host: only a record made on the same host, and no open deployment there.
"""

from __future__ import annotations

from collections.abc import Sequence

from bojdeploy.core.plan import Action, Plan, Step
from bojdeploy.engine.run import UNCHANGED_LOG, Outcome, Run, reason_of, row_fields, say, untouched
from bojdeploy.errors import BojdeployError, ConnectError
from bojdeploy.store.base import SUCCESSFUL, StateStore


def quick_unchanged(
    store: StateStore, environment: str, plan: Plan, host: str = ""
) -> frozenset[tuple[str, str, str]]:
    """(kind, name, host) of the plan's unchanged steps on `host` ('' = the default target) that
    need neither a lock nor another look."""
    steps = [s for s in plan.steps if _candidate(s, environment)]
    if not steps:
        return frozenset()
    ids = {s.observed.deployment_id for s in steps if s.observed and s.observed.deployment_id}
    found = store.confirmations(environment, ids)
    busy = store.open_deployments(environment)
    quick = set()
    for step in steps:
        assert step.observed is not None and step.observed.deployment_id is not None
        record = found.get(step.observed.deployment_id)
        if record is None or (step.kind, step.name, host) in busy:
            continue
        same = (record.deployment_type, record.name, record.config_hash, record.host) == (
            step.kind,
            step.name,
            step.observed.config_hash,
            host,
        )
        if same and (record.status in SUCCESSFUL or record.confirmed_by is not None):
            quick.add((step.kind, step.name, host))
    return frozenset(quick)


def _candidate(step: Step, environment: str) -> bool:
    """Unchanged on the target as observed there, by a deployment this database may know."""
    obs, want = step.observed, step.desired
    return (
        step.action is Action.UNCHANGED
        and obs is not None
        and want is not None
        and obs.source == "target"
        and obs.managed
        and obs.environment == environment
        and obs.name == step.name
        and obs.deployment_id is not None
        and not obs.unfinished
        and obs.config_hash == want.config_hash
    )


def record_unchanged(run: Run, steps: Sequence[Step]) -> list[Outcome]:
    """Record the steps as unchanged (each a completed row and its log line) in one write."""
    rows = [row_fields(run, step, "unchanged", reason_of(step)) for step in steps]
    try:
        ids = run.store.record_unchanged(rows, UNCHANGED_LOG)
    except BojdeployError as e:
        unreachable = isinstance(e, ConnectError)
        return [untouched(run, step, str(e), unreachable=unreachable) for step in steps]
    for step in steps:
        say(run, f"{step.kind}/{step.name}", "info", "unchanged")
    return [
        Outcome(step.kind, step.name, "unchanged", "unchanged", "unchanged", dep_id, host=run.host)
        for step, dep_id in zip(steps, ids, strict=True)
    ]
