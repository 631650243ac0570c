"""Finishing or undoing a Swarm deployment a killed run left unconfirmed."""

from __future__ import annotations

import time
from typing import Any

from bojdeploy.drivers.base import StepLog
from bojdeploy.drivers.docker_errors import docker_errors
from bojdeploy.drivers.service_objects import SwarmObjects, removed_note
from bojdeploy.drivers.service_wait import (
    deployment_of,
    rollback_end,
    rollback_outcome,
    wait_converged,
)
from bojdeploy.errors import BojdeployError, DriverError

# A rollback to the spec the manifest asks for (Swarm restores its labels): waiting finishes it.
ROLLING_BACK = ("rollback_started", "rollback_completed")


def finish(
    client: Any,
    current: dict[str, Any],
    store: SwarmObjects,
    timeout: float,
    why: str | None,
    log: StepLog,
) -> tuple[str, dict[str, Any]] | None:
    """Finish the deployment Swarm has not confirmed, or undo it: (summary, facts) when done.

    None: send the spec again (Swarm paused its rollback). Never sends the same spec while Swarm
    works on it: that would make the unconfirmed spec the one Swarm rolls back to.
    """
    name, ident = current["Spec"]["Name"], current["ID"]
    state = (current.get("UpdateStatus") or {}).get("State")
    which = deployment_of(current)
    deadline = time.monotonic() + timeout
    if state == "rollback_paused":
        log("warn", f"Swarm paused rolling back to {which}; sending its spec again")
        return None
    if state == "paused":
        _undo_paused(client, current, which, deadline, store, log)
    log("info", f"finishing the interrupted {which}: {why}")
    try:
        _await(client, ident, name, state, deadline, log)
    except BojdeployError as e:
        store.sweep((), log, "unused")
        raise DriverError(f"the interrupted {which} did not finish: {e}") from e
    removed = store.prune(_spec_objects(current), log, "leftover")
    done = "rolled back to" if state in ROLLING_BACK else "finished the interrupted"
    return f"{done} {which} of service {name}{removed_note(removed)}", _facts(current)


def _await(
    client: Any, ident: str, name: str, state: str | None, deadline: float, log: StepLog
) -> None:
    """Wait for what Swarm is doing: a rollback to this spec, or the update or create."""
    if state not in ROLLING_BACK:
        wait_converged(client, ident, name, deadline - time.monotonic(), log)
        return
    ended = rollback_end(client, ident, name, deadline)
    if ended.state != "rollback_completed":
        raise DriverError(f"Swarm's rollback: {rollback_outcome(name, ended)}")


def _undo_paused(
    client: Any,
    current: dict[str, Any],
    which: str,
    deadline: float,
    store: SwarmObjects,
    log: StepLog,
) -> None:
    """Roll back an update Swarm paused, as `docker service rollback` does; always raises."""
    name, ident = current["Spec"]["Name"], current["ID"]
    log("warn", f"Swarm paused the update to {which}; rolling it back")
    api = client.api
    with docker_errors(f"cannot roll service {name} back"):
        url = api._url("/services/{0}/update", ident)
        params = {"version": current["Version"]["Index"], "rollback": "previous"}
        api._result(api._post_json(url, data=current["Spec"], params=params), True)
    ended = rollback_end(client, ident, name, deadline)
    store.sweep((), log, "unused")
    raise DriverError(
        f"Swarm had paused the update to {which} (update.failure_action: pause); "
        f"bojdeploy rolled it back: {rollback_outcome(name, ended)}"
    )


def _spec_objects(current: dict[str, Any]) -> set[str]:
    """The names of the configs and secrets the service's spec uses."""
    container = current["Spec"]["TaskTemplate"]["ContainerSpec"]
    refs = (container.get("Configs") or []) + (container.get("Secrets") or [])
    return {str(r.get("ConfigName") or r.get("SecretName")) for r in refs}


def _facts(current: dict[str, Any]) -> dict[str, Any]:
    """What a finished deployment runs: the pinned image, its digest, the service and configs."""
    container = current["Spec"]["TaskTemplate"]["ContainerSpec"]
    image = str(container["Image"])
    configs = [str(c.get("ConfigName")) for c in container.get("Configs") or []]
    digest = image.partition("@")[2]
    return {"image": image, "image_digest": digest, "service_id": current["ID"], "configs": configs}
