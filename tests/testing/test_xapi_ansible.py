"""Ansible's community.general XenServer modules drive a whole VM life against the simulator,
and bojdeploy leaves the VMs they make alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bojdeploy.store import open_store
from bojdeploy.testing.xapi import XapiSimulator
from tests.helpers import git_identity, run_cli
from tests.test_apply_vm import PASSWORD, USER, VMRepo
from tests.testing.ansible_env import ansible_venv, run_playbook, task_results

PLAYBOOKS = Path(__file__).parent / "ansible"
GIB, MIB = 2**30, 2**20
ETH0, ETH1 = (f"Pool-wide network associated with eth{n}" for n in (0, 1))
XENSTORE = {"vm-data": "", "vm-data/role": "web", "vm-data/owner": "ops"}


@pytest.fixture
def venv() -> Path:
    return ansible_venv()


@pytest.fixture
def sim() -> Iterator[XapiSimulator]:
    with XapiSimulator(username=USER, password=PASSWORD, ip_delay=0.2) as simulator:
        yield simulator


def play(venv: Path, sim: XapiSimulator, tmp_path: Path, name: str, vm: str) -> dict[str, Any]:
    """Run a playbook against the simulator; each task's result, after checking none failed."""
    extra = {"xapi_url": sim.url, "xapi_password": PASSWORD, "vm_name": vm}
    report = run_playbook(venv, PLAYBOOKS / name, tmp_path, extra)
    results = task_results(report)
    failed = {task: r.get("msg", r) for task, r in results.items() if r.get("failed")}
    assert failed == {}
    stats = report["stats"]["localhost"]
    assert (stats["failures"], stats["unreachable"]) == (0, 0)
    assert stats["ok"] == len(results)
    return results


def vms_named(sim: XapiSimulator, name: str) -> list[str]:
    with sim.state.lock:
        return sim.state.find("VM", name_label=name)


def test_vm_lifecycle(venv: Path, sim: XapiSimulator, tmp_path: Path) -> None:
    vdis = len(sim.state.objects["VDI"])
    results = play(venv, sim, tmp_path, "lifecycle.yml", "web-01")

    created = results["Create from the template, with disks, a CD, two networks and xenstore data"]
    assert created["changed"] is True
    first = results["Read it back"]["instance"]
    assert first["state"] == "poweredon" and first["is_template"] is False
    assert first["hardware"] == {"num_cpus": 2, "num_cpu_cores_per_socket": 1, "memory_mb": 1024}
    disks = [
        (d["name"], d["name_desc"], d["size"], d["sr"], d["vbd_userdevice"]) for d in first["disks"]
    ]
    assert disks == [
        ("web-01-system", "", 10 * GIB, "Local storage", "0"),
        ("web-01-data", "scratch", GIB, "Local storage", "1"),
    ]
    assert [d["os_device"] for d in first["disks"]] == ["xvda", "xvdb"]
    assert first["cdrom"] == {"type": "iso", "iso_name": "guest-tools.iso"}
    assert [(n["name"], n["vif_device"], n["mtu"]) for n in first["networks"]] == [
        (ETH0, "0", "1500"),
        (ETH1, "1", "1500"),
    ]
    ips = [n["ip"] for n in first["networks"]]
    assert all(ip.startswith("192.0.2.") for ip in ips) and len(set(ips)) == 2
    assert first["xenstore_data"] == XENSTORE
    assert created["instance"]["networks"][0]["ip"] == ips[0]  # it waited for the IP

    assert results["Running it again changes nothing"]["changed"] is False

    reconfigured = results["Reconfigure to 4 vCPUs and 2 GiB (a power cycle, forced)"]
    assert reconfigured["changed"] is True
    assert {"hardware": ["num_cpus", "memory_mb"]} in reconfigured["changes"]
    assert "need_poweredoff" in reconfigured["changes"]
    assert results["Restart"]["changed"] is True
    assert results["Reboot the guest (an Async task the module waits for)"]["changed"] is True

    final = results["Read it back after the changes"]["instance"]
    assert final["state"] == "poweredon"
    assert final["hardware"] == {"num_cpus": 4, "num_cpu_cores_per_socket": 1, "memory_mb": 2048}
    assert final["uuid"] == first["uuid"] and final["disks"] == first["disks"]
    assert final["networks"] == first["networks"]  # same VIFs, MACs, leases
    assert final["xenstore_data"] == XENSTORE and final["cdrom"] == first["cdrom"]

    assert results["Remove it and its disks"]["changed"] is True
    assert vms_named(sim, "web-01") == []
    assert len(sim.state.objects["VDI"]) == vdis
    assert all(vbd["VM"] in sim.state.objects["VM"] for vbd in sim.state.objects["VBD"].values())
    assert all(vif["VM"] in sim.state.objects["VM"] for vif in sim.state.objects["VIF"].values())

    called = {method for method, _ in sim.calls}
    # The power cycle of the forced reconfiguration, the restart and the guest reboot.
    assert {"Async.VM.clean_shutdown", "VM.hard_reboot", "Async.VM.clean_reboot"} <= called
    assert {"VM.get_allowed_VBD_devices", "VM.get_allowed_VIF_devices", "VBD.insert"} <= called
    assert {"VM.set_memory_limits", "VM.hard_shutdown", "VDI.destroy"} <= called


def test_ansible_vm_is_left_alone_by_bojdeploy(
    venv: Path, sim: XapiSimulator, tmp_path: Path
) -> None:
    play(venv, sim, tmp_path, "create.yml", "ansible-db")
    (theirs,) = vms_named(sim, "ansible-db")
    with sim.state.lock:
        before = json.loads(json.dumps(sim.state.record("VM", theirs), default=str))
    calls = len(sim.calls)

    repo = VMRepo(tmp_path / "repo", f"sqlite:///{tmp_path / 'state.db'}", sim.url)
    git_identity(repo.root, "team/vms")
    assert repo.apply().code == 0
    env = {"BOJDEPLOY_XEN_URL": sim.url, "BOJDEPLOY_XEN_USERNAME": USER}
    env["BOJDEPLOY_XEN_PASSWORD"] = PASSWORD
    status = run_cli("--database-url", repo.db_url, "status", "--json", str(repo.root), env=env)
    assert status.code == 0, status.err
    # What bojdeploy deployed, and the VM it never made: listed, never drift, never its own.
    items = json.loads(status.out)
    assert [(i["name"], i["resource_name"], i["state"]) for i in items] == [
        ("web", "web", "in sync"),
        (None, "ansible-db", "unmanaged"),
    ]
    assert before["uuid"] in items[1]["detail"] and not items[1]["drifted"]

    (repo.root / "deploy" / "db.yml").write_text(
        (repo.root / "deploy" / "web.yml").read_text().replace("{name: web}", "{name: ansible-db}")
    )
    refused = repo.apply()
    assert refused.code == 1
    assert 'vm "ansible-db" exists on the target but is not managed by bojdeploy' in refused.err

    (repo.root / "deploy" / "db.yml").unlink()
    (repo.root / "deploy" / "web.yml").unlink()
    repo.config(allow_vm_destroy=True)
    pruned = repo.apply("--prune")
    assert pruned.code == 0, pruned.err
    assert vms_named(sim, "web") == []
    with sim.state.lock:
        after = json.loads(json.dumps(sim.state.record("VM", theirs), default=str))
    for field in ("uuid", "power_state", "other_config", "VBDs", "VIFs", "VCPUs_max", "domid"):
        assert after[field] == before[field], field
    touched = [m for m, params in sim.calls[calls:] if theirs in params and ".get_" not in m]
    assert touched == []
    with open_store(repo.db_url) as store:
        assert {r.name for r in store.list_deployments(limit=100)} == {"web"}
    status = run_cli("--database-url", repo.db_url, "status", "--json", str(repo.root), env=env)
    assert status.code == 0, status.err
    assert [(i["resource_name"], i["state"]) for i in json.loads(status.out)] == [
        ("ansible-db", "unmanaged")
    ]
