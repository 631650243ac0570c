"""Self-heal's rules that need no target: off without `self_heal`, VMs only with
policy.allow_vm_destroy (a drifted VM is reported, never re-applied, and nothing is recorded)."""

from __future__ import annotations

from pathlib import Path

from bojdeploy.engine.drift import DriftItem
from bojdeploy.engine.heal import NO_VMS, Heal, heal
from bojdeploy.engine.workspace import open_workspace
from bojdeploy.settings import Settings
from bojdeploy.store import open_store


def vm_drift(deployment_id: int) -> DriftItem:
    """A VM found halted that its deployment left running."""
    return DriftItem("production", "vm", "db", "db", deployment_id, "stopped", "state is Halted")


def heal_in(tmp_path: Path, config: str) -> tuple[list[Heal], list[tuple[str, str, str]], int]:
    """Heal a drifted VM in a repository with this bojdeploy.yaml: heals, reports, rows."""
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "bojdeploy.yaml").write_text(
        "environments:\n  production: {branches: [main]}\n" + config
    )
    url = f"sqlite:///{tmp_path / 'state.db'}"
    reports: list[tuple[str, str, str]] = []
    with open_store(url) as store:
        recorded = store.create_deployment(
            deployment_type="vm",
            name="db",
            environment="production",
            status="completed",
            config={"kind": "VM", "spec": {"power": "running"}},
        )
        heals = heal(
            store,
            Settings.from_env({}, database_url=url),
            lambda *said: reports.append(said),
            open_workspace([tmp_path / "repo"], branch="main", repository="ops/infra"),
            [vm_drift(recorded)],
        )
        count = len(store.list_deployments())
    return list(heals), reports, count


def test_without_self_heal_nothing_is_reapplied(tmp_path: Path) -> None:
    heals, reports, count = heal_in(tmp_path, "")
    assert (heals, reports, count) == ([], [], 1)


def test_a_drifted_vm_is_reported_not_reapplied_without_allow_vm_destroy(tmp_path: Path) -> None:
    heals, reports, count = heal_in(tmp_path, "self_heal: true\n")
    [done] = heals
    assert (done.outcomes, done.note, done.failed) == ([], NO_VMS, False)
    assert reports == [("vm/db", "warn", f"drifted (stopped); {NO_VMS}")]
    assert count == 1  # no deployment recorded: the VM was not touched
