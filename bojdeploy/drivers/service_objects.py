"""A service's Swarm configs and secrets: made by content, removed when nothing uses them."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from bojdeploy.drivers.base import StepLog
from bojdeploy.drivers.docker_errors import docker_errors
from bojdeploy.drivers.service_spec import SwarmObject
from bojdeploy.drivers.service_wait import referenced_objects
from bojdeploy.errors import BojdeployError

ObjectKey = tuple[str, str]  # (config | secret, name)


class SwarmObjects:
    """The configs and secrets labelled as one service's (`owner` labels)."""

    def __init__(self, client: Any, owner: Mapping[str, str]):
        self.client = client
        self.owner = dict(owner)

    def owned(self) -> dict[ObjectKey, str]:
        """(kind, name) -> ID of every config and secret carrying the owner labels."""
        api = self.client.api
        filters = {"label": [f"{k}={v}" for k, v in self.owner.items()]}
        found: dict[ObjectKey, str] = {}
        with docker_errors("cannot list Swarm configs and secrets"):
            for kind, items in (("config", api.configs), ("secret", api.secrets)):
                for item in items(filters=filters):
                    found[(kind, item["Spec"]["Name"])] = item["ID"]
        return found

    def ensure(self, objects: list[SwarmObject], log: StepLog) -> list[tuple[SwarmObject, str]]:
        """Every config and secret with its ID, created when missing (names are content hashes)."""
        existing = self.owned() if objects else {}
        refs = []
        for obj in objects:
            key = (obj.kind, obj.name)
            if key not in existing:
                create = getattr(self.client.api, f"create_{obj.kind}")
                with docker_errors(f"cannot create {obj.kind} {shown(*key)}"):
                    existing[key] = create(obj.name, obj.data, labels=self.owner)["ID"]
                log("info", f"created {obj.kind} {shown(*key)}")
            refs.append((obj, existing[key]))
        return refs

    def prune(
        self,
        keep: Collection[str],
        log: StepLog,
        why: str = "obsolete",
        in_use: Collection[str] = (),
    ) -> list[str]:
        """Remove those not named in `keep` nor IDs `in_use`; failures only warn. Returns them."""
        removed = []
        for (kind, name), ident in self.owned().items():
            if name in keep or ident in in_use:
                continue
            try:
                with docker_errors(f"cannot remove {kind} {shown(kind, name)}"):
                    getattr(self.client.api, f"remove_{kind}")(ident)
            except BojdeployError as e:
                log("warn", f"kept {why} {kind}: {e}")
                continue
            log("info", f"removed {why} {kind} {shown(kind, name)}")
            removed.append(f"{kind} {shown(kind, name)}")
        return removed

    def sweep(self, keep: Collection[str], log: StepLog, why: str = "leftover") -> list[str]:
        """Remove those no service's spec or previous spec uses, except `keep`; only warns.

        They are left by an update that was killed, or that Swarm rolled back.
        """
        try:
            with docker_errors("cannot list Swarm services"):
                in_use = referenced_objects(self.client.api.services())
            return self.prune(keep, log, why, in_use)
        except BojdeployError as e:
            log("warn", f"did not remove {why} configs and secrets: {e}")
            return []


def removed_note(removed: list[str]) -> str:
    """'; removed leftover config x, secret y' for a summary, or nothing."""
    return f"; removed leftover {', '.join(removed)}" if removed else ""


def shown(kind: str, name: str) -> str:
    """An object's name for logs; a secret's without its content hash."""
    return name.rpartition("-")[0] if kind == "secret" else name
