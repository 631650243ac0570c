"""VMDriver with the unmodified XenAPI SDK against the XAPI simulator."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bojdeploy.core.loader import LoadedManifest
from bojdeploy.core.manifest import VMManifest
from bojdeploy.core.plan import Action, Desired, Step, make_plan
from bojdeploy.core.yamlsrc import Document
from bojdeploy.drivers.base import Ownership, Work
from bojdeploy.drivers.vm import VMDriver, connect_xen, disconnect_xen, observe_vms
from bojdeploy.errors import ConnectError, DriverError
from bojdeploy.testing.xapi import XapiSimulator

GIB = 2**30
TEMPLATE = "Debian Bookworm 12"
NETWORK = "Pool-wide network associated with eth0"
ENV = "test"


class Recorder:
    """A StepLog that keeps every line and can act when a line appears."""

    def __init__(self, on: str = "", action: Callable[[], None] | None = None) -> None:
        self.lines: list[str] = []
        self.on, self.action = on, action

    def __call__(self, level: str, message: str, **metadata: Any) -> None:
        self.lines.append(f"{level} {message}")
        if self.action is not None and self.on and self.on in message:
            self.action()
            self.action = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class Pool:
    """What a user sees on the pool, through a XenAPI session of their own."""

    def __init__(self, url: str) -> None:
        import XenAPI

        self.session = XenAPI.Session(url)
        self.session.xenapi.login_with_password("root", "pw", "1.0", "pool-test")
        self.api = self.session.xenapi

    def vms(self, name: str) -> list[dict[str, Any]]:
        """Records of the VMs (not templates) named `name`."""
        records = [self.api.VM.get_record(ref) for ref in self.api.VM.get_by_name_label(name)]
        return [r for r in records if not r["is_a_template"] and not r["is_a_snapshot"]]

    def vm(self, name: str) -> dict[str, Any]:
        (record,) = self.vms(name)
        return record

    def networks(self, record: dict[str, Any]) -> list[tuple[str, str]]:
        """(device, network name_label) of each VIF, by device."""
        vifs = [self.api.VIF.get_record(ref) for ref in record["VIFs"]]
        return sorted((v["device"], self.api.network.get_name_label(v["network"])) for v in vifs)

    def vdi_count(self) -> int:
        return len(self.api.VDI.get_all())

    def close(self) -> None:
        self.session.xenapi.session.logout()


@pytest.fixture
def sim() -> Iterator[Any]:
    """A fresh simulator (guest IPs 0.2s after start) for one test."""
    with XapiSimulator(ip_delay=0.2) as simulator:
        yield simulator


@pytest.fixture
def session(sim: Any) -> Iterator[Any]:
    session = connect_xen(sim.url, "root", "pw")
    yield session
    disconnect_xen(session)


@pytest.fixture
def pool(sim: Any) -> Iterator[Pool]:
    view = Pool(sim.url)
    yield view
    view.close()


def vm_spec(**spec: Any) -> dict[str, Any]:
    return {
        "template": TEMPLATE,
        "vcpus": 2,
        "memory": "1GiB",
        "networks": [{"network": NETWORK}],
        "cloud_init": {
            "datasource": "http://cfg.example/nocloud/",
            "role": "web",
            "params": {"tier": "front"},
        },
        "xenstore": {"vm-data/custom/owner": "platform"},
        "wait": {"start": "30s", "ip": "10s"},
        **spec,
    }


def work(session: Any, spec: dict[str, Any], name: str = "web") -> Work:
    """The Work the engine would hand over: planned against what the pool has now."""
    data = {"apiVersion": "bojdeploy/v1", "kind": "VM", "metadata": {"name": name}, "spec": spec}
    loaded = LoadedManifest(
        VMManifest.model_validate(data), f"deploy/{name}.yml", ENV, Document(data, 1)
    )
    config_hash = loaded.config_hash({}, b"k")
    desired = Desired("vm", name, ENV, name, config_hash, loaded.redacted()["spec"], loaded.file)
    observed = [o for o in observe_vms(session) if o.resource_name == name]
    (step,) = make_plan([desired], observed, environment=ENV, full_scope=False).steps
    owner = Ownership(name, "vm", ENV, config_hash, 1, "abc123", "org/repo", loaded.file)
    return Work(step, loaded, {}, owner)


def delete_work(session: Any, name: str = "web") -> Work:
    (obs,) = [o for o in observe_vms(session) if o.resource_name == name]
    return Work(Step(Action.DELETE, "vm", name, ENV, None, obs), None)


def test_create_from_template(session: Any, pool: Pool) -> None:
    log = Recorder()
    job = work(session, vm_spec())
    summary = VMDriver(session).apply(job, log)
    vm = pool.vm("web")
    assert summary.startswith(f"created VM web ({vm['uuid']}) from template {TEMPLATE}")
    assert vm["power_state"] == "Running"
    assert (vm["VCPUs_max"], vm["VCPUs_at_startup"]) == ("2", "2")
    assert (
        vm["memory_static_max"] == vm["memory_dynamic_max"] == vm["memory_dynamic_min"] == str(GIB)
    )
    assert pool.networks(vm) == [("0", NETWORK)]
    assert (
        vm["xenstore_data"].items()
        >= {
            "vm-data/cloud-init/datasource": "http://cfg.example/nocloud/",
            "vm-data/cloud-init/role": "web",
            "vm-data/cloud-init/environment": ENV,
            "vm-data/cloud-init/tier": "front",
            "vm-data/custom/owner": "platform",
        }.items()
    )
    other = vm["other_config"]
    assert other["bojdeploy.managed"] == "true" and other["bojdeploy.environment"] == ENV
    assert other["bojdeploy.config-hash"] == job.ownership.config_hash  # type: ignore[union-attr]
    assert not vm["is_a_template"]
    assert job.facts["uuid"] == vm["uuid"] and job.facts["ip"]
    assert f"guest IP {job.facts['ip']} after" in log.text
    assert "cloning template" in log.text and "provisioning VM web" in log.text


def test_reapply_unchanged_makes_no_call(session: Any, sim: Any) -> None:
    VMDriver(session).apply(work(session, vm_spec()), Recorder())
    again = work(session, vm_spec())
    before = len(sim.calls)
    assert again.step.action is Action.UNCHANGED
    assert VMDriver(session).apply(again, Recorder()) == "unchanged"
    assert len(sim.calls) == before


@pytest.mark.parametrize("on_change", ["reboot", "recreate"])
def test_vcpus_and_memory_change(session: Any, pool: Pool, on_change: str) -> None:
    driver = VMDriver(session)
    driver.apply(work(session, vm_spec(on_change=on_change)), Recorder())
    first = pool.vm("web")
    vdis = pool.vdi_count()
    log = Recorder()
    summary = driver.apply(work(session, vm_spec(vcpus=4, memory="2GiB", on_change=on_change)), log)
    vm = pool.vm("web")
    assert (vm["VCPUs_max"], vm["VCPUs_at_startup"], vm["memory_static_max"]) == (
        "4",
        "4",
        str(2 * GIB),
    )
    assert vm["power_state"] == "Running"
    assert pool.vdi_count() == vdis  # nothing left behind: the old disks went with the old VM
    if on_change == "reboot":
        assert vm["uuid"] == first["uuid"]
        assert summary.startswith("rebooted VM web to change vcpus, memory")
        assert "shutting down VM web" in log.text and "starting VM web" in log.text
    else:
        assert vm["uuid"] != first["uuid"]
        assert pool.vms("web.previous") == []
        assert summary.startswith(f"recreated VM web ({vm['uuid']})")


@pytest.mark.parametrize("on_change", ["reboot", "recreate"])
def test_failed_change_restores_the_previous_vm(
    session: Any, pool: Pool, sim: Any, on_change: str
) -> None:
    driver = VMDriver(session)
    driver.apply(work(session, vm_spec(on_change=on_change)), Recorder())
    before, vdis = pool.vm("web"), pool.vdi_count()
    sim.fail_next("VM.start", "HOST_NOT_ENOUGH_FREE_MEMORY", str(64 * GIB), str(GIB))
    with pytest.raises(DriverError) as caught:
        driver.apply(work(session, vm_spec(vcpus=4, on_change=on_change)), Recorder())
    assert "HOST_NOT_ENOUGH_FREE_MEMORY" in str(caught.value)
    assert "restored" in str(caught.value)
    vm = pool.vm("web")
    assert (vm["uuid"], vm["VCPUs_max"], vm["power_state"]) == (before["uuid"], "2", "Running")
    assert pool.vdi_count() == vdis and pool.vms("web.previous") == []


def test_refuse_changes_nothing(session: Any, pool: Pool, sim: Any) -> None:
    driver = VMDriver(session)
    driver.apply(work(session, vm_spec(on_change="refuse")), Recorder())
    job = work(session, vm_spec(vcpus=4, on_change="refuse"))
    before = len(sim.mutating_calls())
    with pytest.raises(
        DriverError, match="changing vcpus needs the VM halted and spec.on_change is refuse"
    ):
        driver.apply(job, Recorder())
    assert len(sim.mutating_calls()) == before
    assert pool.vm("web")["VCPUs_max"] == "2"


def test_in_place_update_of_xenstore_without_reboot(session: Any, pool: Pool) -> None:
    driver = VMDriver(session)
    driver.apply(work(session, vm_spec()), Recorder())
    started = pool.vm("web")["domid"]
    spec = vm_spec(xenstore={"vm-data/custom/new": "1"})
    summary = driver.apply(work(session, spec), Recorder())
    vm = pool.vm("web")
    assert summary.startswith("updated VM web in place (xenstore_data)")
    assert vm["domid"] == started and vm["power_state"] == "Running"
    assert vm["xenstore_data"]["vm-data/custom/new"] == "1"
    assert "vm-data/custom/owner" not in vm["xenstore_data"]


def test_power_halted(session: Any, pool: Pool) -> None:
    driver = VMDriver(session)
    driver.apply(work(session, vm_spec(power="halted")), Recorder())
    assert pool.vm("web")["power_state"] == "Halted"
    driver.apply(work(session, vm_spec()), Recorder())
    assert pool.vm("web")["power_state"] == "Running"
    summary = driver.apply(work(session, vm_spec(power="halted")), Recorder())
    assert pool.vm("web")["power_state"] == "Halted"
    assert "power halted" in summary


def test_start_failure_destroys_the_vm_and_its_disks(session: Any, pool: Pool, sim: Any) -> None:
    vdis = pool.vdi_count()
    sim.fail_next("VM.start", "HOST_NOT_ENOUGH_FREE_MEMORY", str(64 * GIB), str(GIB))
    log = Recorder()
    with pytest.raises(DriverError) as caught:
        VMDriver(session).apply(work(session, vm_spec()), log)
    message = str(caught.value)
    assert f"HOST_NOT_ENOUGH_FREE_MEMORY: {64 * GIB}, {GIB}" in message
    assert "the half-built VM web and its disks were destroyed" in message
    assert pool.vms("web") == [] and pool.vdi_count() == vdis


def test_session_expiry_mid_run_is_survived(session: Any, pool: Pool, sim: Any) -> None:
    log = Recorder(on="provisioning VM web: done", action=sim.expire_sessions)
    VMDriver(session).apply(work(session, vm_spec()), log)
    assert log.action is None  # the sessions were expired mid-run
    assert pool.vm("web")["power_state"] == "Running"


def test_wrong_credentials() -> None:
    with XapiSimulator(username="root", password="right") as strict:
        with pytest.raises(ConnectError, match="SESSION_AUTHENTICATION_FAILED"):
            connect_xen(strict.url, "root", "wrong")
        assert strict.mutating_calls() == []


def test_unreachable() -> None:
    with pytest.raises(ConnectError, match="cannot reach Xen"):
        connect_xen("http://127.0.0.1:9", "root", "pw")


def test_a_pool_that_stops_answering_fails_the_call_instead_of_hanging(sim: Any) -> None:
    session = connect_xen(sim.url, "root", "pw", timeout=0.5)
    sim.slow("VM.get_all_records_where", 3)
    started = time.monotonic()
    with pytest.raises(ConnectError, match="timed out"):
        observe_vms(session)
    assert time.monotonic() - started < 2.5
    sim.slow("VM.get_all_records_where", 0)
    disconnect_xen(session)


def test_an_unowned_vm_is_never_touched(session: Any, pool: Pool, sim: Any) -> None:
    job = work(session, vm_spec())  # planned before someone made a VM named web
    template = pool.api.VM.get_by_name_label(TEMPLATE)[0]
    theirs = pool.api.VM.clone(template, "web")
    pool.api.VM.remove_from_other_config(theirs, "disks")
    pool.api.VM.provision(theirs)
    before = len(sim.mutating_calls())
    with pytest.raises(DriverError, match="already exists"):
        VMDriver(session).apply(job, Recorder())
    (stranger,) = [o for o in observe_vms(session) if o.resource_name == "web"]
    update = Step(Action.UPDATE, "vm", "web", ENV, job.step.desired, stranger)
    with pytest.raises(DriverError, match="not managed by bojdeploy"):
        VMDriver(session).apply(Work(update, job.manifest, {}, job.ownership), Recorder())
    assert len(sim.mutating_calls()) == before


def test_delete_destroys_vm_and_disks(session: Any, pool: Pool) -> None:
    vdis = pool.vdi_count()
    VMDriver(session).apply(work(session, vm_spec()), Recorder())
    assert pool.vdi_count() > vdis
    summary = VMDriver(session).apply(delete_work(session), Recorder())
    assert summary.startswith("destroyed VM web and its disks")
    assert pool.vms("web") == [] and pool.vdi_count() == vdis


def test_template_must_be_unique(session: Any, pool: Pool, sim: Any) -> None:
    template = pool.api.VM.get_by_name_label(TEMPLATE)[0]
    pool.api.VM.clone(template, TEMPLATE)  # a second template with the same name
    before = len(sim.mutating_calls())
    with pytest.raises(DriverError, match=f"template '{TEMPLATE}': need exactly one") as caught:
        VMDriver(session).apply(work(session, vm_spec()), Recorder())
    assert str(caught.value).count("(template)") == 2
    assert len(sim.mutating_calls()) == before


def test_xenstore_value_too_large_changes_nothing(session: Any, sim: Any) -> None:
    spec = vm_spec(cloud_init={"user_data": "#cloud-config\n" + "x" * 5000})
    with pytest.raises(DriverError, match="vm-data/cloud-init/user-data is 5014 bytes"):
        VMDriver(session).apply(work(session, spec), Recorder())
    assert sim.mutating_calls() == []
