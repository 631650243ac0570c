"""Apply: run a plan's steps under per-target locks, in dependency order, recording everything."""

from __future__ import annotations

import contextvars
import logging
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bojdeploy import logs
from bojdeploy.core.plan import Action, Plan, Step, force_redeploy, make_plan
from bojdeploy.core.render import describe_step
from bojdeploy.core.validation import levels
from bojdeploy.drivers.base import Ownership, Work
from bojdeploy.engine.run import (
    UNCHANGED_LOG,
    Observer,
    Outcome,
    Reporter,
    Run,
    reason_of,
    row_fields,
    say,
    untouched,
    with_target,
)
from bojdeploy.engine.unchanged import record_unchanged
from bojdeploy.errors import BojdeployError, ConnectError, internal_error_line

__all__ = ["Observer", "Outcome", "Reporter", "Run", "apply_plan", "apply_step", "step_levels"]
LOCK_TIMEOUT = 600.0
LEVELS = {"warning": "warn", "debug": "info", "critical": "error"}  # the store's three levels
_log = logging.getLogger(__name__)  # tracebacks of internal errors (scrubbed), for -vv


def apply_plan(run: Run, plan: Plan) -> list[Outcome]:
    """Apply creates and updates level by level, then the deletes, only if nothing failed.

    Levels come from `depends_on` (`core.validation.levels`, the order `prepare` chose too); a
    level starts when the previous one has ended, its steps run `run.parallel` at a time. A step
    whose dependency failed or was itself not applied is not applied (transitively, down the
    chain). Deletes (prune) come last, in a level of their own, so that nothing is removed before
    what replaces it runs (a renamed container keeps its port); after any failure they are not
    run but recorded as skipped.
    """
    changes = [s for s in plan.steps if s.action is not Action.DELETE]
    deletes = [s for s in plan.steps if s.action is Action.DELETE]
    run.deleting = {
        kind: tuple(s.resource_name for s in deletes if s.kind == kind)
        for kind in {s.kind for s in deletes}
    }
    blocked: set[str] = set()  # names that failed or were not applied in this run
    for level in step_levels(changes):
        _apply_level(run, level, blocked)
    broken = [o for o in run.outcomes if o.status == "failed"]
    if deletes and broken:
        names = ", ".join(f"{o.kind} {o.name}" for o in broken)
        why = f"not deleted: {names} failed in this run, so nothing is pruned"
        run.outcomes.extend(_not_run(run, step, why) for step in deletes)
    elif deletes:
        _apply_level(run, deletes, blocked)
    run.unrecorded = run.records.finish()
    return run.outcomes


def step_levels(steps: Sequence[Step]) -> list[list[Step]]:
    """The steps grouped by their manifests' `depends_on`, by the one algorithm of the core."""
    return levels(steps, lambda s: s.name, _needs)


def _needs(step: Step) -> tuple[str, ...]:
    return step.desired.depends_on if step.desired else ()


def _apply_level(run: Run, level: list[Step], blocked: set[str]) -> None:
    """One level in parallel; a step whose dependency is blocked is recorded and not applied."""
    ready, quick = [], []
    for step in level:
        if set(_needs(step)) & blocked:
            run.outcomes.append(_skipped(run, step, blocked))
            blocked.add(step.name)  # and so on down the chain
        elif (step.kind, step.name, run.host) in run.quick and step.action is Action.UNCHANGED:
            quick.append(step)  # confirmed and unchanged: recorded without a lock, in one batch
        else:
            ready.append(step)
    outcomes = record_unchanged(run, quick) if quick else []
    contexts = [contextvars.copy_context() for _ in ready]  # the caller's log keys, per step
    with ThreadPoolExecutor(max_workers=max(1, run.parallel)) as pool:
        outcomes += pool.map(lambda c, s: c.run(_logged_step, run, s), contexts, ready)
    order = {(s.kind, s.name): i for i, s in enumerate(level)}
    for outcome in sorted(outcomes, key=lambda o: order[(o.kind, o.name)]):
        run.outcomes.append(outcome)
        if outcome.status == "failed":
            blocked.add(outcome.name)


def _skipped(run: Run, step: Step, blocked: set[str]) -> Outcome:
    deps = sorted(set(_needs(step)) & blocked)
    message = f"not applied: dependency {', '.join(deps)} failed"
    return _not_run(run, step, message, status="failed")


def _not_run(run: Run, step: Step, message: str, status: str = "skipped") -> Outcome:
    """Record a step that was not applied (a `failed` row saying why) and report it."""
    level = "error" if status == "failed" else "warn"
    label = f"{step.kind}/{step.name}"
    say(run, label, level, message)
    try:
        dep_id: int | None = _record(run, step, "failed", reason=step.reason)
    except BojdeployError as e:  # the target was not touched; only its record is missing
        say(run, label, "warn", f"not recorded: {run.scrub(str(e))}")
        dep_id = None
    if dep_id is not None:
        run.records.update(dep_id, error_message=message, completed=True)
        run.records.log(dep_id, level, message)
    return Outcome(step.kind, step.name, step.action.value, status, message, dep_id, message)


def _logged_step(run: Run, step: Step) -> Outcome:
    """`apply_step` with the step's environment, kind, name and repository on its log lines."""
    keys = {"environment": step.environment, "kind": step.kind, "name": step.name}
    with logs.bound(repository=run.info.repository or None, **keys):
        return apply_step(run, step)


def apply_step(run: Run, step: Step) -> Outcome:
    """Lock the target, re-check it, record a row, apply, and record the result."""
    label = f"{step.kind}/{step.name}"
    env = step.environment
    try:
        with run.store.lock(
            env,
            step.kind,
            step.name,
            timeout=LOCK_TIMEOUT,
            on_wait=lambda msg: say(run, label, "info", f"waiting: {msg}"),
        ):
            for dep_id in run.store.mark_interrupted(env, step.kind, step.name):
                say(run, label, "warn", f"deployment #{dep_id} was interrupted; marked failed")
            outcome = _locked(run, _recheck(run, step))
            if outcome.deployment_id is not None:
                run.records.settle(outcome.deployment_id)  # before another run may take the lock
            return outcome
    except BojdeployError as e:  # raised before the target was touched (_locked contains the rest)
        return untouched(run, step, str(e), unreachable=isinstance(e, ConnectError))
    except Exception as e:  # noqa: BLE001 - a bug in one step must not abort the others
        _log.debug("internal error in %s\n%s", label, run.scrub(traceback.format_exc()))
        return untouched(run, step, internal_error_line(e), unreachable=False)


def _recheck(run: Run, step: Step) -> Step:
    """Re-plan one step under its lock: another run may have changed the target meanwhile."""
    if step.desired is None:
        return step
    observed = run.observe(step.kind, step.resource_name)
    fresh = make_plan(
        [step.desired],
        observed,
        environment=step.environment,
        full_scope=False,
        repository=run.info.repository or None,
    )
    if run.force:
        fresh = force_redeploy(fresh)
    return fresh.steps[0] if fresh.steps else step


def _record(run: Run, step: Step, status: str, reason: str) -> int:
    return run.store.create_deployment(**row_fields(run, step, status, reason))


def _locked(run: Run, step: Step) -> Outcome:
    label = f"{step.kind}/{step.name}"
    reason = reason_of(step)
    if step.action is Action.UNCHANGED:
        dep_id = _record(run, step, "unchanged", reason)
        logs.bind(deployment_id=dep_id)
        run.records.log(dep_id, "info", UNCHANGED_LOG)
        run.records.update(dep_id, completed=True)
        say(run, label, "info", "unchanged")
        return Outcome(step.kind, step.name, "unchanged", "unchanged", "unchanged", dep_id)
    dep_id = _record(run, step, "running", reason)
    logs.bind(deployment_id=dep_id)  # until the step's `bound` block ends
    started = time.monotonic()

    def log(level: str, message: str, **metadata: Any) -> None:
        level = LEVELS.get(level, level)
        text = run.scrub(message)
        meta = {k: run.scrub(str(v)) for k, v in metadata.items()} or None
        run.records.log(dep_id, level, text, meta)  # queued: the target work never waits on it
        say(run, label, level, text)

    what = describe_step(step)
    log("info", f"deployment #{dep_id}: {what}" + (f" ({reason})" if reason not in what else ""))
    work = _work(run, step, dep_id)
    try:
        applied = run.drivers[step.kind].apply(work, log)
    except BojdeployError as e:
        return _failed(run, step, dep_id, started, log, str(e))
    except Exception as e:  # noqa: BLE001 - a bug must still leave an honest row behind
        _log.debug("internal error in %s\n%s", label, run.scrub(traceback.format_exc()))
        return _failed(run, step, dep_id, started, log, internal_error_line(e))
    summary = f"{applied.summary} in {applied.seconds:.1f}s"
    log("info", summary)
    config = None
    if applied.facts and work.manifest is not None:
        deployed = {**work.manifest.record(), "deployed": dict(applied.facts)}
        config = with_target(run, step.kind, deployed)
    run.records.update(dep_id, status="completed", config=config, completed=True)
    return Outcome(
        step.kind,
        step.name,
        step.action.value,
        "completed",
        run.scrub(summary),
        dep_id,
        seconds=applied.seconds,
    )


def _failed(
    run: Run, step: Step, dep_id: int, started: float, log: Callable[..., None], error: str
) -> Outcome:
    message = run.scrub(error)
    log("error", message)
    run.records.update(dep_id, status="failed", error_message=message, completed=True)
    return Outcome(
        step.kind,
        step.name,
        step.action.value,
        "failed",
        message,
        dep_id,
        message,
        time.monotonic() - started,
    )


def _work(run: Run, step: Step, dep_id: int) -> Work:
    manifest = run.manifests.get((step.kind, step.name))
    if manifest is None or step.desired is None:
        return Work(step=step, manifest=None)
    ownership = Ownership(
        name=step.name,
        kind=step.kind,
        environment=step.environment,
        config_hash=step.desired.config_hash,
        deployment_id=dep_id,
        git_commit=run.info.sha,
        repository=run.info.repository,
        manifest=step.desired.manifest,
    )
    secrets = run.secrets.get((step.kind, step.name), {})
    deleting = run.deleting.get(step.kind, ())
    return Work(step, manifest, secrets, ownership, key=run.key, deleting=deleting)


def refuse_vm_deletes(plan: Plan, allowed: bool) -> list[str]:
    """VM deletions need policy.allow_vm_destroy; return the refused ones' names."""
    if allowed:
        return []
    return [s.name for s in plan.steps if s.action is Action.DELETE and s.kind == "vm"]
