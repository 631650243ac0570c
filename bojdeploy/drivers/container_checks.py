"""What the container driver checks before it touches a container: whose it is, which is new."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from bojdeploy.core.manifest import ContainerManifest
from bojdeploy.core.plan import Action, Step
from bojdeploy.drivers.base import LABEL_PREFIX, Ownership, Work
from bojdeploy.errors import DriverError


def name_of(info: Mapping[str, Any]) -> str:
    """An inspected container's name (without the engine's leading slash)."""
    return str(info["Name"]).lstrip("/")


def is_managed(info: Mapping[str, Any]) -> bool:
    """Whether an inspected container carries io.bojdeploy.managed=true."""
    return bool((info["Config"].get("Labels") or {}).get(LABEL_PREFIX + "managed") == "true")


def is_new(
    current: dict[str, Any] | None, previous: dict[str, Any] | None
) -> TypeGuard[dict[str, Any]]:
    """Whether `current` is the container this deploy created (not the previous one)."""
    if current is None or not is_managed(current):
        return False
    return previous is None or current["Id"] != previous["Id"]


def check_managed(info: Mapping[str, Any]) -> None:
    """Refuse to touch a container without io.bojdeploy.managed=true."""
    if not is_managed(info):
        raise DriverError(
            f"container {name_of(info)} exists but is not managed by bojdeploy "
            f"(no {LABEL_PREFIX}managed=true label); refusing to touch it"
        )


def finishing(step: Step) -> bool:
    """An update of a container whose deployment was not confirmed: finish it or undo it."""
    return (
        step.action is Action.UPDATE
        and step.observed is not None
        and bool(step.observed.unfinished)
    )


def interrupted(step: Step) -> str:
    """'deployment #7' (the one that made the container), or a generic name."""
    ident = step.observed.deployment_id if step.observed else None
    return f"deployment #{ident}" if ident is not None else "deployment"


def container_work(work: Work) -> tuple[ContainerManifest, Ownership]:
    """The Container manifest and ownership a create or replace step needs."""
    manifest = work.manifest.manifest if work.manifest is not None else None
    if not isinstance(manifest, ContainerManifest) or work.ownership is None:
        raise DriverError(f"{work.step.action} {work.step.name}: no Container manifest given")
    return manifest, work.ownership
