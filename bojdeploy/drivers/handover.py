"""Host ports handed over from a container this run prunes to the one that replaces it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bojdeploy.drivers.base import LABEL_PREFIX, StepLog
from bojdeploy.drivers.container_spec import PortBinding
from bojdeploy.drivers.docker_errors import docker_errors
from bojdeploy.errors import BojdeployError

HostPort = tuple[str, str, int]  # (host ip, "" for every address; protocol; port)
DEFAULT_STOP_TIMEOUT = 10
_ANY = ("", "0.0.0.0", "::")


def wanted_ports(bindings: Mapping[str, Sequence[PortBinding]]) -> set[HostPort]:
    """The fixed host ports of docker-py port bindings ({"80/tcp": [(ip, host)]})."""
    out = set()
    for key, pairs in bindings.items():
        proto = key.partition("/")[2] or "tcp"
        out |= {(ip, proto, int(port)) for ip, port in pairs if port}
    return out


def held_ports(info: Mapping[str, Any]) -> set[HostPort]:
    """The host ports an inspected container publishes (HostConfig.PortBindings)."""
    out = set()
    for key, pairs in ((info.get("HostConfig") or {}).get("PortBindings") or {}).items():
        proto = key.partition("/")[2] or "tcp"
        for pair in pairs or []:
            if str(pair.get("HostPort") or "").isdigit():
                out.add((pair.get("HostIp") or "", proto, int(pair["HostPort"])))
    return out


def clash(a: Iterable[HostPort], b: Iterable[HostPort]) -> list[HostPort]:
    """The ports of `a` that `b` also binds (one address, or all addresses, on either side)."""
    return [
        one
        for one in a
        if any(
            one[1:] == other[1:] and (one[0] == other[0] or one[0] in _ANY or other[0] in _ANY)
            for other in b
        )
    ]


def take_over(
    client: Any, bindings: Mapping[str, Sequence[PortBinding]], names: Sequence[str], log: StepLog
) -> list[dict[str, Any]]:
    """Stop the running managed containers among `names` that hold ports we need; return them.

    They are this run's prune deletes: removing them before the new container is confirmed
    would risk downtime, so they are stopped now, removed by their delete step at the end of the
    run, and started again (by `give_back`) if the new container fails.
    """
    wanted, stopped = wanted_ports(bindings), []
    for name in names:
        info = _running_managed(client, name)
        taken = clash(wanted, held_ports(info)) if info else []
        if info is None or not taken:
            continue
        ports = ", ".join(f"{ip or '*'}:{port}/{proto}" for ip, proto, port in sorted(taken))
        log("info", f"stopping container {name} (pruned by this run): it holds {ports}")
        timeout = info["Config"].get("StopTimeout") or DEFAULT_STOP_TIMEOUT
        with docker_errors(f"cannot stop container {name}"):
            client.api.stop(info["Id"], timeout=timeout)
        stopped.append(info)
    return stopped


def _running_managed(client: Any, name: str) -> dict[str, Any] | None:
    """The running container called exactly `name` with io.bojdeploy.managed=true, or None."""
    from docker.errors import NotFound

    with docker_errors(f"cannot inspect container {name}"):
        try:
            info: dict[str, Any] = client.api.inspect_container(name)
        except NotFound:
            return None
    labels = info["Config"].get("Labels") or {}
    if str(info["Name"]).lstrip("/") != name or not info["State"].get("Running"):
        return None
    return info if labels.get(LABEL_PREFIX + "managed") == "true" else None


def give_back(client: Any, stopped: Sequence[Mapping[str, Any]], log: StepLog) -> None:
    """Start the containers `take_over` stopped again; a failure is logged, never raised."""
    for info in stopped:
        name = str(info["Name"]).lstrip("/")
        try:
            with docker_errors(f"cannot start container {name} again"):
                client.api.start(info["Id"])
        except BojdeployError as e:
            log("error", f"{e}; start it with `docker start {name}`")
            continue
        log("info", f"started container {name} again")
