"""Confirmation: whether the deployment that made an observed resource is known to have finished.

A config hash on a label says which config a resource carries, not that deploying it finished:
a run killed during a health check leaves the new container labelled like a good one. So every
live observation is checked against the record of the deployment named by its
`io.bojdeploy.deployment-id`: a row of the same environment, kind, name and config hash that is
not completed/unchanged, with no later completed/unchanged row of the same resource and hash,
makes the resource unfinished. A deployment id this database does not know (another database)
leaves only the target-side evidence the driver's observation found.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from bojdeploy.core.plan import Observed
from bojdeploy.drivers.observe import HEALTH_EVIDENCE
from bojdeploy.store.base import INTERRUPTED, SUCCESSFUL, Confirmation, StateStore


def confirm(store: StateStore, environment: str, observed: Sequence[Observed]) -> list[Observed]:
    """The observations with `unfinished` set from their records (one query for all of them)."""
    ids = {o.deployment_id for o in observed if _recorded_here(o, environment)}
    found = store.confirmations(environment, {i for i in ids if i is not None}) if ids else {}
    return [
        _judged(o, found.get(o.deployment_id or 0)) if _recorded_here(o, environment) else o
        for o in observed
    ]


def _recorded_here(obs: Observed, environment: str) -> bool:
    return (
        obs.managed
        and obs.source == "target"
        and obs.environment == environment
        and obs.deployment_id is not None
    )


def _judged(obs: Observed, record: Confirmation | None) -> Observed:
    """One observation with the verdict of its record."""
    if record is None or (record.deployment_type, record.name, record.config_hash) != (
        obs.kind,
        obs.name,
        obs.config_hash,
    ):
        return obs  # another database's deployment: only the target can tell
    if record.status in SUCCESSFUL or record.confirmed_by is not None:
        if obs.unfinished and obs.unfinished.startswith(HEALTH_EVIDENCE):
            return dataclasses.replace(obs, unfinished=None)  # confirmed once; now it is drift
        return obs
    why = f"deployment #{record.deployment_id} {_what_happened(record)}"
    if obs.unfinished:
        why = f"{why}; {obs.unfinished}"
    return dataclasses.replace(obs, unfinished=why)


def _what_happened(record: Confirmation) -> str:
    if record.status == "failed":
        return "was interrupted" if record.error_message == INTERRUPTED else "failed"
    return "has not finished (interrupted, or still running)"
