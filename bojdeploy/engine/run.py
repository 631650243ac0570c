"""One run of a plan: what it needs (store, drivers, inputs) and what happened to each resource."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bojdeploy import __version__
from bojdeploy.core.loaded import LoadedManifest
from bojdeploy.core.plan import Observed, Step
from bojdeploy.core.secrets import Scrubber
from bojdeploy.drivers.base import Driver
from bojdeploy.engine.gitrepo import GitInfo
from bojdeploy.engine.recording import Records, unrecorded_note
from bojdeploy.errors import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE
from bojdeploy.store.base import StateStore

Reporter = Callable[[str, str, str], None]  # (resource, level, message)
Observer = Callable[[str, str], list[Observed]]  # (kind, resource name) -> live observations
UNCHANGED_LOG = "config hash unchanged on the target: nothing to do"


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
    host: str = ""  # the named host of a fleet this run deploys to; "" for the default target
    # (kind, name, host) of unchanged steps whose records on that host confirm what runs there:
    # recorded without a lock
    quick: frozenset[tuple[str, str, str]] = frozenset()
    records: Records = field(init=False)
    unrecorded: dict[int, int] = field(default_factory=dict)  # deployment id -> writes lost

    def __post_init__(self) -> None:
        self.records = Records(self.store, lambda level, msg: say(self, "records", level, msg))

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


def say(run: Run, resource: str, level: str, message: str) -> None:
    """Show a line; a closed terminal or pipe must never break a deployment."""
    with contextlib.suppress(OSError):
        run.report(resource, level, message)


def with_target(run: Run, kind: str, config: dict[str, Any] | None) -> dict[str, Any]:
    """The config to record: where the resource went (so a rollback goes there too), and which
    bojdeploy recorded it (`deployed.bojdeploy_version`, on every row)."""
    config = config if config is not None else {"deleted": True, "kind": kind}
    deployed = {**config.get("deployed", {}), "bojdeploy_version": __version__}
    config = {**config, "deployed": deployed}
    return {**config, "target": dict(run.target(kind))} if run.target else config


def reason_of(step: Step) -> str:
    """Why a step's resource was selected, and what differs on its target."""
    why = [step.desired.reason if step.desired else "", step.reason]
    return "; ".join(dict.fromkeys(w for w in why if w))


def row_fields(run: Run, step: Step, status: str, reason: str) -> dict[str, Any]:
    """The deployment row of one step, as the store's create_deployment takes it."""
    manifest = run.manifests.get((step.kind, step.name))
    return {
        "deployment_type": step.kind,
        "name": step.name,
        "environment": step.environment,
        "status": status,
        "git_commit": run.info.sha or None,
        "git_branch": run.info.branch or None,
        "git_repository": run.info.repository or None,
        "config": with_target(run, step.kind, manifest.record() if manifest else None),
        "rollback_from": run.rollback_from,
        "reason": run.scrub(reason) or None,
        "config_hash": step.desired.config_hash if step.desired else None,
        "manifest": step.manifest,
        "host": run.host,
    }


def untouched(run: Run, step: Step, error: str, *, unreachable: bool) -> Outcome:
    """A step that failed before its target was touched: one line, a failed outcome, no row."""
    message = run.scrub(error)
    say(run, f"{step.kind}/{step.name}", "error", message)
    return Outcome(
        step.kind,
        step.name,
        step.action.value,
        "failed",
        message,
        error=message,
        unreachable=unreachable,
        host=run.host,
    )
