"""Docker networks made on demand: one per name, even when parallel steps need it at once."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from bojdeploy.drivers.base import StepLog
from bojdeploy.drivers.docker_errors import docker_errors
from bojdeploy.errors import DriverError

# Docker 20.10 lets two creates of one name both succeed; one lock per (engine, name) in this
# process, then a fresh look before creating, makes parallel steps create a network once.
_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_GUARD = threading.Lock()


def _lock_for(engine: str, name: str) -> threading.Lock:
    with _GUARD:
        return _LOCKS.setdefault((engine, name), threading.Lock())


def named(api: Any, name: str) -> list[dict[str, Any]]:
    """The networks called exactly `name` (Docker's name filter also matches parts of names)."""
    with docker_errors(f"cannot list networks named {name}"):
        found = api.networks(names=[name])
    return [n for n in found if n.get("Name") == name]


def ensure_network(
    api: Any, name: str, log: StepLog, *, driver: str, labels: Mapping[str, str], **options: Any
) -> bool:
    """Create the network `name` unless it exists; True if created. DriverError on duplicates."""
    with _lock_for(str(getattr(api, "base_url", "")), name):
        found = named(api, name)
        if len(found) > 1:
            raise DriverError(duplicates_message(name, found))
        if found:
            return False
        with docker_errors(f"cannot create network {name}"):
            api.create_network(
                name, driver=driver, labels=dict(labels), check_duplicate=True, **options
            )
    log("info", f"created {'' if driver == 'bridge' else driver + ' '}network {name}")
    return True


def duplicates_message(name: str, found: list[dict[str, Any]]) -> str:
    """Why a network name cannot be used, and the command that fixes it."""
    ordered = sorted(found, key=lambda n: (str(n.get("Created", "")), n["Id"]))
    keep, extra = ordered[0], [n["Id"][:12] for n in ordered[1:]]
    ids = ", ".join(
        f"{n['Id'][:12]} ({n.get('Driver', '?')}, {n.get('Scope', '?')})" for n in ordered
    )
    return (
        f"network {name} is ambiguous: {len(found)} networks of that name exist on the Docker "
        f"host ({ids}); Docker cannot tell which one is meant, so nothing was changed. Keep one "
        f"and remove the others, e.g. keep the oldest ({keep['Id'][:12]}): "
        f"`docker network rm {' '.join(extra)}` (disconnect or remove their containers first; "
        f"`docker network inspect {extra[0]}` lists them), then apply again"
    )
