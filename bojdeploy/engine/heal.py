"""Self-heal: re-apply drifted resources from the config their last deployment recorded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bojdeploy.engine.apply import Outcome, Reporter
from bojdeploy.engine.drift import DriftItem
from bojdeploy.engine.rollback import rollback
from bojdeploy.engine.workspace import Workspace
from bojdeploy.errors import BojdeployError
from bojdeploy.settings import Settings
from bojdeploy.store.base import StateStore

REASON = "drift"
HEALED_KINDS = ("container", "service")  # VMs only with policy.allow_vm_destroy
NO_VMS = "not re-applied: VMs are re-applied only with policy.allow_vm_destroy"


@dataclass(frozen=True)
class Heal:
    """What self-heal did about one drifted resource."""

    item: DriftItem
    outcomes: list[Outcome] = field(default_factory=list)  # empty: nothing was applied
    note: str = ""  # why it was not re-applied, or why that failed

    @property
    def failed(self) -> bool:
        """Whether the re-apply was tried and did not succeed."""
        return bool(self.note and self.note != NO_VMS) or any(
            o.status == "failed" for o in self.outcomes
        )


def heal(
    store: StateStore,
    settings: Settings,
    report: Reporter,
    workspace: Workspace,
    items: Sequence[DriftItem],
) -> list[Heal]:
    """With `self_heal: true` in bojdeploy.yaml, re-apply each drifted resource from the config
    its recorded deployment holds, as a new deployment whose reason starts with "drift" (a
    rollback to that deployment: the same engine path). VMs only with policy.allow_vm_destroy.
    A failure is recorded as a failed deployment; nothing is retried here."""
    config = workspace.config
    if not config.self_heal:
        return []
    heals = []
    for item in items:
        if not item.drifted or item.deployment_id is None:
            continue
        what = f"{item.kind}/{item.name}"
        if item.kind not in HEALED_KINDS and not config.policy.allow_vm_destroy:
            report(what, "warn", f"drifted ({item.state}); {NO_VMS}")
            heals.append(Heal(item, note=NO_VMS))
            continue
        report(
            what, "info", f"drifted ({item.state}): re-applying deployment #{item.deployment_id}"
        )
        heals.append(_reapply(store, settings, report, workspace, item))
    return heals


def _reapply(
    store: StateStore, settings: Settings, report: Reporter, workspace: Workspace, item: DriftItem
) -> Heal:
    assert item.deployment_id is not None  # only recorded resources drift
    record = store.get_deployment(item.deployment_id)
    if record is None or not record.config:
        return Heal(item, note=f"deployment #{item.deployment_id} recorded no config")
    try:
        run = rollback(store, settings, report, workspace=workspace, record=record, reason=REASON)
    except BojdeployError as e:  # before anything was applied: recorded, so history shows it
        why = f"self-heal could not start: {e}"
        report(f"{item.kind}/{item.name}", "error", why)
        failed = store.create_deployment(
            deployment_type=record.deployment_type,
            name=record.name,
            environment=record.environment,
            status="failed",
            git_commit=record.git_commit,
            git_branch=record.git_branch,
            git_repository=record.git_repository,
            rollback_from=record.id,
            reason=REASON,
            manifest=record.manifest,
        )
        store.update_deployment(failed, error_message=why, completed=True)
        return Heal(item, note=why)
    return Heal(item, outcomes=list(run.outcomes))
