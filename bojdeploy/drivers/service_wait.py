"""Waiting for a Swarm service to converge: every desired task running the new spec."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from bojdeploy.drivers.base import StepLog
from bojdeploy.drivers.docker_errors import docker_errors
from bojdeploy.errors import DriverError

POLL_SECONDS = 0.25
PROGRESS_SECONDS = 2.0
# Without an update to watch (a new service, a scale), tasks must stay up this long.
SETTLE_SECONDS = 1.0
ROLLED_BACK = ("rollback_started", "rollback_paused", "rollback_completed")
STOPPED = (*ROLLED_BACK, "paused")
ROLLBACK_ENDED = ("rollback_paused", "rollback_completed")
FAILED_TASK = ("failed", "rejected")
DEPLOYMENT_LABEL = "io.bojdeploy.deployment-id"


@dataclass(frozen=True)
class Progress:
    """One look at a service: tasks on the current spec that run, out of those desired."""

    running: int
    desired: int
    state: str | None  # UpdateStatus.State; None: no rolling update (yet)
    message: str = ""

    @property
    def converged(self) -> bool:
        """All desired tasks run the current spec and no update is still in progress."""
        return self.running >= self.desired and self.state in (None, "completed")

    def describe(self, elapsed: float) -> str:
        """'2/3 running, 14s' (with the update state while there is one)."""
        state = f" ({self.state})" if self.state else ""
        return f"{self.running}/{self.desired} running, {elapsed:.0f}s{state}"


def assess(service: dict[str, Any], tasks: Sequence[dict[str, Any]]) -> Progress:
    """Progress of `service` (listed with status) from its up-to-date, desired-running tasks."""
    update = service.get("UpdateStatus") or {}
    running = sum(
        1
        for t in tasks
        if t.get("DesiredState") == "running" and t.get("Status", {}).get("State") == "running"
    )
    desired = int((service.get("ServiceStatus") or {}).get("DesiredTasks", 0))
    return Progress(running, desired, update.get("State"), str(update.get("Message") or ""))


def task_error(tasks: Sequence[dict[str, Any]], old: Collection[str] = ()) -> str | None:
    """The newest failure of a task not in `old`: 'task 3k2j1h0g9f8e failed: task: ...'."""
    failed = [
        t
        for t in tasks
        if (t.get("Status") or {}).get("Err")
        and t["Status"].get("State") in FAILED_TASK
        and t.get("ID") not in old
    ]
    if not failed:
        return None
    last = max(failed, key=lambda t: str(t["Status"].get("Timestamp", "")))
    status = last["Status"]
    return f"task {str(last.get('ID', ''))[:12]} {status.get('State')}: {status['Err']}"


def wait_converged(
    client: Any,
    service_id: str,
    name: str,
    timeout: float,
    log: StepLog,
    old: Collection[str] = (),
) -> Progress:
    """Poll until converged; DriverError when Swarm rolls back or pauses, or at the timeout.

    `old` are the IDs of tasks from before this change: their failures are not this one's.
    """
    started = last_log = time.monotonic()
    settled_at: float | None = None
    while True:
        progress = _look(client, service_id, name)
        now = time.monotonic()
        if progress.state in STOPPED:
            deadline = started + timeout
            return _stopped(client, service_id, name, progress, deadline, log, old)
        if progress.converged:
            settled_at = settled_at or now
            if progress.state == "completed" or now - settled_at >= SETTLE_SECONDS:
                return progress
        else:
            settled_at = None
        if now - started >= timeout:
            raise DriverError(_timeout_message(client, service_id, name, timeout, progress, old))
        if now - last_log >= PROGRESS_SECONDS:
            last_log = now
            log("info", progress.describe(now - started), elapsed=round(now - started))
        time.sleep(POLL_SECONDS)


def _look(client: Any, service_id: str, name: str) -> Progress:
    """One poll: the service with its task counts, and its up-to-date desired tasks."""
    with docker_errors(f"cannot inspect service {name}"):
        found = [
            s
            for s in client.api.services(filters={"id": service_id}, status=True)
            if s["ID"] == service_id
        ]
        if not found:
            raise DriverError(f"service {name} disappeared while bojdeploy waited for it")
        filters = {"service": service_id, "desired-state": "running", "_up-to-date": "true"}
        return assess(found[0], client.api.tasks(filters=filters))


def task_ids(client: Any, service_id: str, name: str) -> set[str]:
    """The IDs of every task the service has now (running, failed or shut down)."""
    return {t["ID"] for t in _all_tasks(client, service_id, name)}


def _all_tasks(client: Any, service_id: str, name: str) -> list[dict[str, Any]]:
    with docker_errors(f"cannot list the tasks of service {name}"):
        return list(client.api.tasks(filters={"service": service_id}))


def _stopped(
    client: Any,
    service_id: str,
    name: str,
    progress: Progress,
    deadline: float,
    log: StepLog,
    old: Collection[str],
) -> Progress:
    """Swarm stopped the update: wait for its rollback to end (until `deadline`), then fail."""
    why = task_error(_all_tasks(client, service_id, name), old) or progress.message or "no error"
    if progress.state == "paused":
        raise DriverError(
            f"Swarm paused the update of service {name} (update.failure_action: pause): {why}; "
            f"tasks of the old and new versions may both run; fix the manifest and redeploy, "
            f"or run `docker service rollback {name}`"
        )
    log("error", f"Swarm is rolling the update of {name} back: {why}")
    progress = rollback_end(client, service_id, name, deadline)
    outcome = rollback_outcome(name, progress)
    raise DriverError(f"Swarm rolled the update of service {name} back: {why}; {outcome}")


def rollback_end(client: Any, service_id: str, name: str, deadline: float) -> Progress:
    """Poll a rollback until it completes or pauses, or until `deadline`."""
    progress = _look(client, service_id, name)
    while progress.state not in ROLLBACK_ENDED and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        progress = _look(client, service_id, name)
    return progress


def rollback_outcome(name: str, progress: Progress) -> str:
    """What a rollback left running, for an error message."""
    return {
        "rollback_completed": "the previous version runs again",
        "rollback_paused": "the rollback itself paused: check `docker service ps " + name + "`",
    }.get(progress.state or "", "the rollback had not finished at the timeout")


def _timeout_message(
    client: Any,
    service_id: str,
    name: str,
    timeout: float,
    progress: Progress,
    old: Collection[str],
) -> str:
    """Why the wait ended: the counts, the update state, the last task error."""
    state = f", update {progress.state}" if progress.state else ""
    error = task_error(_all_tasks(client, service_id, name), old)
    last = f"; last task error: {error}" if error else ""
    hint = ""
    if progress.state == "updating":
        hint = (
            f"\nSwarm goes on with the update: deploy a fixed manifest, "
            f"or run `docker service rollback {name}`"
        )
    return (
        f"service {name} did not converge within {timeout:g}s: {progress.running}/"
        f"{progress.desired} tasks run the new spec{state}{last}{hint}"
    )


def deployment_of(service: dict[str, Any]) -> str:
    """'deployment #12' for the deployment whose spec the service has (from its labels)."""
    ident = ((service.get("Spec") or {}).get("Labels") or {}).get(DEPLOYMENT_LABEL)
    return f"deployment #{ident}" if ident else "the last deployment"


def unfinished_why(service: dict[str, Any]) -> str | None:
    """Why Swarm has not confirmed the service's spec, from one `services(status=True)` entry.

    A rolling update still running, paused, or being rolled back; or, without a rolling update
    (a create, a scale), fewer running tasks than desired. A finished rollback is not
    unfinished: Swarm restores the whole previous spec, labels included, so the labels name
    the earlier deployment that runs again.
    """
    state = (service.get("UpdateStatus") or {}).get("State")
    which = deployment_of(service)
    reasons = {
        "updating": f"Swarm is still updating the service to {which}",
        "paused": f"Swarm paused the update to {which}",
        "rollback_started": f"Swarm is rolling an update back to {which}",
        "rollback_paused": f"Swarm paused rolling an update back to {which}",
    }
    if state in reasons:
        return reasons[state]
    if state is None and _update_not_started(service):
        return f"Swarm has not started the update to {which} yet"
    counts = service.get("ServiceStatus") or {}
    running, desired = int(counts.get("RunningTasks", 0)), int(counts.get("DesiredTasks", 0))
    if state is None and running < desired:
        return f"{running}/{desired} tasks of {which} run"
    return None


def _update_not_started(service: dict[str, Any]) -> bool:
    """An update was sent (the task template changed) but Swarm has no UpdateStatus for it yet.

    For a moment after `service update`, the old tasks still run and count as running while
    the orchestrator has not begun: the new spec is not confirmed by anything yet.
    """
    previous = (service.get("PreviousSpec") or {}).get("TaskTemplate")
    current = (service.get("Spec") or {}).get("TaskTemplate")
    return previous is not None and previous != current


def referenced_objects(services: Sequence[dict[str, Any]]) -> set[str]:
    """IDs of the configs and secrets some service's spec or previous spec (its rollback) uses."""
    out: set[str] = set()
    for service in services:
        for spec in (service.get("Spec"), service.get("PreviousSpec")):
            container = ((spec or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}
            for ref in (container.get("Configs") or []) + (container.get("Secrets") or []):
                out.add(str(ref.get("ConfigID") or ref.get("SecretID")))
    return out
