"""`bojdeploy apply` of VM manifests end to end: CLI, unmodified XenAPI SDK, simulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bojdeploy.store import open_store
from bojdeploy.testing.xapi import XapiSimulator
from tests.helpers import CliResult, git_identity, run_cli

GIB = 2**30
NETWORK = "Pool-wide network associated with eth0"
USER, PASSWORD = "root", "xen-pw-42"


class VMRepo:
    """A deployment repository with one VM manifest, its database, and the pool it deploys to."""

    def __init__(self, root: Path, db_url: str, url: str) -> None:
        self.root, self.db_url, self.url = root, db_url, url
        (root / "deploy").mkdir(parents=True)
        (root / "cloud-init").mkdir()
        (root / "cloud-init" / "web.yaml").write_text(
            "#cloud-config\nhostname: web-{{ environment }}\n"
        )
        self.config()
        self.write()

    def config(self, allow_vm_destroy: bool = False) -> None:
        (self.root / "bojdeploy.yaml").write_text(
            "environments:\n  test: {branches: ['*']}\n"
            f"policy: {{allow_vm_destroy: {str(allow_vm_destroy).lower()}}}\n"
        )

    def write(self, vcpus: int = 2, memory: str = "1GiB", on_change: str = "reboot") -> None:
        (self.root / "deploy" / "web.yml").write_text(
            "apiVersion: bojdeploy/v1\nkind: VM\nmetadata: {name: web}\nspec:\n"
            "  template: Debian Bookworm 12\n"
            f"  vcpus: {vcpus}\n  memory: {memory}\n"
            f"  networks: [{{network: {NETWORK}}}]\n"
            "  cloud_init:\n"
            "    datasource: 'http://cfg.example/nocloud/{{ environment }}/web/'\n"
            "    role: web\n    user_data_file: cloud-init/web.yaml\n"
            "  wait: {start: 30s, ip: 10s}\n"
            f"  on_change: {on_change}\n"
        )

    def apply(self, *extra: str, password: str = PASSWORD) -> CliResult:
        env = {
            "BOJDEPLOY_XEN_URL": self.url,
            "BOJDEPLOY_XEN_USERNAME": USER,
            "BOJDEPLOY_XEN_PASSWORD": password,
        }
        return run_cli(
            "--database-url", self.db_url, "apply", "--env", "test", *extra, str(self.root), env=env
        )

    def rows(self) -> list[Any]:
        with open_store(self.db_url) as store:
            return store.list_deployments(name="web", limit=100)

    def log(self, deployment_id: int) -> str:
        with open_store(self.db_url) as store:
            return "\n".join(e.message for e in store.get_logs(deployment_id))


class Pool:
    """What a user sees on the pool, through a XenAPI session of their own."""

    def __init__(self, url: str) -> None:
        import XenAPI

        self.session = XenAPI.Session(url)
        self.session.xenapi.login_with_password(USER, PASSWORD, "1.0", "pool-test")
        self.api = self.session.xenapi

    def vms(self, name: str = "web") -> list[dict[str, Any]]:
        records = [self.api.VM.get_record(ref) for ref in self.api.VM.get_by_name_label(name)]
        return [r for r in records if not r["is_a_template"] and not r["is_a_snapshot"]]

    def vm(self, name: str = "web") -> dict[str, Any]:
        (record,) = self.vms(name)
        return record

    def vdi_count(self) -> int:
        return len(self.api.VDI.get_all())


@pytest.fixture
def sim() -> Iterator[Any]:
    with XapiSimulator(username=USER, password=PASSWORD, ip_delay=0.2) as simulator:
        yield simulator


@pytest.fixture
def repo(tmp_path: Path, sim: Any) -> VMRepo:
    return VMRepo(tmp_path / "repo", f"sqlite:///{tmp_path / 'state.db'}", sim.url)


@pytest.fixture
def pool(sim: Any) -> Iterator[Pool]:
    view = Pool(sim.url)
    yield view
    view.session.xenapi.session.logout()


def test_create_then_unchanged(repo: VMRepo, pool: Pool, sim: Any) -> None:
    first = repo.apply()
    assert first.code == 0, first.err
    vm = pool.vm()
    assert vm["power_state"] == "Running"
    assert (vm["VCPUs_at_startup"], vm["memory_static_max"]) == ("2", str(GIB))
    xenstore = vm["xenstore_data"]
    assert xenstore["vm-data/cloud-init/user-data"] == "#cloud-config\nhostname: web-test\n"
    assert xenstore["vm-data/cloud-init/datasource"] == "http://cfg.example/nocloud/test/web/"
    assert vm["other_config"]["bojdeploy.manifest"] == "deploy/web.yml"
    (row,) = repo.rows()
    assert row.status == "completed"
    assert "guest IP " in repo.log(row.id)
    assert row.config["deployed"]["uuid"] == vm["uuid"]
    assert "created VM web" in first.err

    changes = len(sim.mutating_calls())
    again = repo.apply()
    assert again.code == 0, again.err
    assert len(sim.mutating_calls()) == changes
    assert [r.status for r in repo.rows()] == ["unchanged", "completed"]


@pytest.mark.parametrize("on_change", ["reboot", "recreate"])
def test_vcpus_and_memory_change(repo: VMRepo, pool: Pool, on_change: str) -> None:
    repo.write(on_change=on_change)
    assert repo.apply().code == 0
    before, vdis = pool.vm(), pool.vdi_count()
    repo.write(vcpus=4, memory="2GiB", on_change=on_change)
    result = repo.apply()
    assert result.code == 0, result.err
    vm = pool.vm()
    assert (vm["VCPUs_at_startup"], vm["memory_static_max"]) == ("4", str(2 * GIB))
    assert vm["power_state"] == "Running"
    assert pool.vdi_count() == vdis
    assert (vm["uuid"] == before["uuid"]) is (on_change == "reboot")
    assert repo.rows()[0].status == "completed"


def test_refuse(repo: VMRepo, pool: Pool, sim: Any) -> None:
    repo.write(on_change="refuse")
    assert repo.apply().code == 0
    changes = len(sim.mutating_calls())
    repo.write(vcpus=4, memory="2GiB", on_change="refuse")
    result = repo.apply()
    assert result.code == 1
    assert "changing vcpus, memory needs the VM halted and on_change is refuse" in result.err
    assert len(sim.mutating_calls()) == changes
    assert pool.vm()["VCPUs_at_startup"] == "2"


def test_not_enough_memory_leaves_nothing_behind(repo: VMRepo, pool: Pool) -> None:
    vdis = pool.vdi_count()
    repo.write(memory="4096GiB")
    result = repo.apply()
    assert result.code == 1
    assert pool.vms() == [] and pool.vdi_count() == vdis
    (row,) = repo.rows()
    assert row.status == "failed"
    assert "HOST_NOT_ENOUGH_FREE_MEMORY" in row.error_message
    assert "destroyed" in row.error_message


def test_wrong_credentials_change_nothing(repo: VMRepo, sim: Any) -> None:
    result = repo.apply(password="wrong")
    assert result.code == 3
    assert "SESSION_AUTHENTICATION_FAILED" in result.err
    assert sim.mutating_calls() == []
    assert repo.rows() == []


def test_unowned_vm_with_the_name_is_refused(repo: VMRepo, pool: Pool, sim: Any) -> None:
    template = pool.api.VM.get_by_name_label("Debian Bookworm 12")[0]
    theirs = pool.api.VM.clone(template, "web")  # someone's VM, made without bojdeploy
    pool.api.VM.remove_from_other_config(theirs, "disks")
    pool.api.VM.provision(theirs)
    changes = len(sim.mutating_calls())
    result = repo.apply()
    assert result.code == 1
    assert "not managed by bojdeploy" in result.err
    assert len(sim.mutating_calls()) == changes
    assert pool.vm()["other_config"].get("bojdeploy.managed") is None


def test_prune_needs_allow_vm_destroy(repo: VMRepo, pool: Pool) -> None:
    git_identity(repo.root, "team/vms")
    vdis = pool.vdi_count()
    assert repo.apply().code == 0
    (repo.root / "deploy" / "web.yml").unlink()
    refused = repo.apply("--prune")
    assert refused.code == 1 and "allow_vm_destroy" in refused.err
    assert pool.vm()["power_state"] == "Running"
    repo.config(allow_vm_destroy=True)
    pruned = repo.apply("--prune")
    assert pruned.code == 0, pruned.err
    assert pool.vms() == [] and pool.vdi_count() == vdis
