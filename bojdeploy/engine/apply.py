"""Apply: run a plan's steps under per-target locks, in dependency order, recording everything."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bojdeploy import __version__, logs
from bojdeploy.core.loaded import LoadedManifest
from bojdeploy.core.plan import Action, Observed, Plan, Step, force_redeploy, make_plan
from bojdeploy.core.render import describe_step
from bojdeploy.core.secrets import Scrubber
from bojdeploy.core.validation import levels
from bojdeploy.drivers.base import Driver, Ownership, Work
from bojdeploy.engine.gitrepo import GitInfo
from bojdeploy.engine.recording import Records, unrecorded_note
from bojdeploy.errors import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    BojdeployError,
    ConnectError,
    internal_error_line,
)
from bojdeploy.store.base import StateStore

Reporter = Callable[[str, str, str], None]  # (resource, level, message)
Observer = Callable[[str, str], list[Observed]]  # (kind, resource name) -> live observations
LOCK_TIMEOUT = 600.0
LEVELS = {"warning": "warn", "debug": "info", "critical": "error"}  # the store's three levels
_log = logging.getLogger(__name__)  # tracebacks of internal errors (scrubbed), for -vv


@dataclass
class Outcome:
    """What happened to one resource."""

    kind: str
    name: str
    action: str
    status: str  # completed | failed | unchanged | skipped (a delete not run after a failure)
    summary: str
    deployment_id: int | None = None
    error: str | None = None
    seconds: float = 0.0
    unreachable: bool = False  # failed before touching its target: a system could not be reached
    host: str = ""  # a named host of a fleet; "" for the environment's default target

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (for --json and the action's outputs); `host` on a named host."""
        return {k: v for k, v in self.__dict__.items() if k != "host" or v}


@dataclass
class Run:
    """Everything a run needs besides the plan: where to record, how to reach targets."""

    store: StateStore
    drivers: Mapping[str, Driver]
    observe: Observer
    info: GitInfo
    manifests: Mapping[tuple[str, str], LoadedManifest]  # (kind, name) -> manifest
    secrets: Mapping[tuple[str, str], Mapping[str, str]]
    scrub: Scrubber
    report: Reporter
    key: bytes
    rollback_from: int | None = None
    parallel: int = 4
    force: bool = False  # redeploy even when unchanged
    target: Callable[[str], Mapping[str, Any]] | None = None  # kind -> connection, recorded
    outcomes: list[Outcome] = field(default_factory=list)
    # kind -> target names this run deletes last: a create may take over their host ports
    deleting: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    records: Records = field(init=False)
    unrecorded: dict[int, int] = field(default_factory=dict)  # deployment id -> writes lost

    def __post_init__(self) -> None:
        self.records = Records(self.store, lambda level, msg: _say(self, "records", level, msg))

    @property
    def ok(self) -> bool:
        """No resource failed."""
        return all(o.status != "failed" for o in self.outcomes)

    @property
    def exit_code(self) -> int:
        """0 done; 3 nothing changed because a system was unreachable; 1 otherwise."""
        if self.unrecorded:
            return EXIT_FAILED
        if self.ok:
            return EXIT_OK
        failed = [o for o in self.outcomes if o.status == "failed"]
        changed = any(o.status == "completed" for o in self.outcomes)
        unreachable = all(o.unreachable for o in failed) and not changed
        return EXIT_UNREACHABLE if unreachable else EXIT_FAILED

    def unrecorded_notes(self) -> list[str]:
        """One line per deployment whose records could not be written."""
        return [
            unrecorded_note(o.kind, o.name, o.action, o.status, o.deployment_id)
            for o in self.outcomes
            if o.deployment_id is not None and o.deployment_id in self.unrecorded
        ]


def _say(run: Run, resource: str, level: str, message: str) -> None:
    """Show a line; a closed terminal or pipe must never break a deployment."""
    with contextlib.suppress(OSError):
        run.report(resource, level, message)


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
    ready = []
    for step in level:
        if set(_needs(step)) & blocked:
            run.outcomes.append(_skipped(run, step, blocked))
            blocked.add(step.name)  # and so on down the chain
        else:
            ready.append(step)
    contexts = [contextvars.copy_context() for _ in ready]  # the caller's log keys, per step
    with ThreadPoolExecutor(max_workers=max(1, run.parallel)) as pool:
        for outcome in pool.map(lambda c, s: c.run(_logged_step, run, s), contexts, ready):
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
    _say(run, label, level, message)
    try:
        dep_id: int | None = _record(run, step, "failed", reason=step.reason)
    except BojdeployError as e:  # the target was not touched; only its record is missing
        _say(run, label, "warn", f"not recorded: {run.scrub(str(e))}")
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
            on_wait=lambda msg: _say(run, label, "info", f"waiting: {msg}"),
        ):
            for dep_id in run.store.mark_interrupted(env, step.kind, step.name):
                _say(run, label, "warn", f"deployment #{dep_id} was interrupted; marked failed")
            outcome = _locked(run, _recheck(run, step))
            if outcome.deployment_id is not None:
                run.records.settle(outcome.deployment_id)  # before another run may take the lock
            return outcome
    except BojdeployError as e:  # raised before the target was touched (_locked contains the rest)
        return _untouched(run, step, str(e), unreachable=isinstance(e, ConnectError))
    except Exception as e:  # noqa: BLE001 - a bug in one step must not abort the others
        _log.debug("internal error in %s\n%s", label, run.scrub(traceback.format_exc()))
        return _untouched(run, step, internal_error_line(e), unreachable=False)


def _untouched(run: Run, step: Step, error: str, *, unreachable: bool) -> Outcome:
    """A step that failed before its target was touched: one line, a failed outcome, no row."""
    message = run.scrub(error)
    _say(run, f"{step.kind}/{step.name}", "error", message)
    return Outcome(
        step.kind,
        step.name,
        step.action.value,
        "failed",
        message,
        error=message,
        unreachable=unreachable,
    )


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
    manifest = run.manifests.get((step.kind, step.name))
    config = _with_target(run, step.kind, manifest.record() if manifest else None)
    return run.store.create_deployment(
        deployment_type=step.kind,
        name=step.name,
        environment=step.environment,
        status=status,
        git_commit=run.info.sha or None,
        git_branch=run.info.branch or None,
        git_repository=run.info.repository or None,
        config=config,
        rollback_from=run.rollback_from,
        reason=run.scrub(reason) or None,
        config_hash=step.desired.config_hash if step.desired else None,
        manifest=step.manifest,
    )


def _with_target(run: Run, kind: str, config: dict[str, Any] | None) -> dict[str, Any]:
    """The config to record: where the resource went (so a rollback goes there too), and which
    bojdeploy recorded it (`deployed.bojdeploy_version`, on every row)."""
    config = config if config is not None else {"deleted": True, "kind": kind}
    deployed = {**config.get("deployed", {}), "bojdeploy_version": __version__}
    config = {**config, "deployed": deployed}
    return {**config, "target": dict(run.target(kind))} if run.target else config


def _locked(run: Run, step: Step) -> Outcome:
    label = f"{step.kind}/{step.name}"
    why = [step.desired.reason if step.desired else "", step.reason]
    reason = "; ".join(dict.fromkeys(w for w in why if w))  # why it was selected, what differs
    if step.action is Action.UNCHANGED:
        dep_id = _record(run, step, "unchanged", reason)
        logs.bind(deployment_id=dep_id)
        run.records.log(dep_id, "info", "config hash unchanged on the target: nothing to do")
        run.records.update(dep_id, completed=True)
        _say(run, label, "info", "unchanged")
        return Outcome(step.kind, step.name, "unchanged", "unchanged", "unchanged", dep_id)
    dep_id = _record(run, step, "running", reason)
    logs.bind(deployment_id=dep_id)  # until the step's `bound` block ends
    started = time.monotonic()

    def log(level: str, message: str, **metadata: Any) -> None:
        level = LEVELS.get(level, level)
        text = run.scrub(message)
        meta = {k: run.scrub(str(v)) for k, v in metadata.items()} or None
        run.records.log(dep_id, level, text, meta)  # queued: the target work never waits on it
        _say(run, label, level, text)

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
        config = _with_target(run, step.kind, deployed)
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
