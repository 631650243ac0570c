"""VMDriver with the unmodified XenAPI SDK against the XAPI simulator; at the end, what a killed
run leaves on a pool (marked half-made VMs, templates with ownership keys, `<name>.creating`
clones, `<name>.previous` VMs), how the driver finishes or removes it, and what it never touches."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bojdeploy.core.loaded import LoadedManifest
from bojdeploy.core.manifest import VMManifest
from bojdeploy.core.plan import Action, Desired, Step, make_plan
from bojdeploy.core.yamlsrc import Document
from bojdeploy.drivers import vm_ops as ops
from bojdeploy.drivers.base import Ownership, Work
from bojdeploy.drivers.vm import VMDriver, connect_xen, disconnect_xen, observe_vms
from bojdeploy.drivers.vm_spec import vm_config
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
    assert VMDriver(session).observe_one(name) == observed  # the re-check sees it the same
    (step,) = make_plan([desired], observed, environment=ENV, full_scope=False).steps
    owner = Ownership(name, "vm", ENV, config_hash, 1, "abc123", "org/repo", loaded.file)
    return Work(step, loaded, {}, owner)


def delete_work(session: Any, name: str = "web") -> Work:
    (obs,) = [o for o in observe_vms(session) if o.resource_name == name]
    return Work(Step(Action.DELETE, "vm", name, ENV, None, obs), None)


def test_create_from_template(session: Any, pool: Pool) -> None:
    log = Recorder()
    job = work(session, vm_spec())
    applied = VMDriver(session).apply(job, log)
    vm = pool.vm("web")
    assert applied.summary.startswith(f"created VM web ({vm['uuid']}) from template {TEMPLATE}")
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
    assert applied.facts["uuid"] == vm["uuid"] and applied.facts["ip"]
    assert f"guest IP {applied.facts['ip']} after" in log.text
    assert "cloning template" in log.text and "provisioning VM web" in log.text


def test_reapply_unchanged_makes_no_call(session: Any, sim: Any) -> None:
    VMDriver(session).apply(work(session, vm_spec()), Recorder())
    again = work(session, vm_spec())
    before = len(sim.calls)
    assert again.step.action is Action.UNCHANGED
    assert VMDriver(session).apply(again, Recorder()).summary == "unchanged"
    assert len(sim.calls) == before


@pytest.mark.parametrize("on_change", ["reboot", "recreate"])
def test_vcpus_and_memory_change(session: Any, pool: Pool, on_change: str) -> None:
    driver = VMDriver(session)
    driver.apply(work(session, vm_spec(on_change=on_change)), Recorder())
    first = pool.vm("web")
    vdis = pool.vdi_count()
    log = Recorder()
    summary = driver.apply(
        work(session, vm_spec(vcpus=4, memory="2GiB", on_change=on_change)), log
    ).summary
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
    # the ownership keys say what runs: the previous config, confirmed (nothing to finish)
    assert (
        vm["other_config"]["bojdeploy.config-hash"]
        == before["other_config"]["bojdeploy.config-hash"]
    )
    assert "bojdeploy.unfinished" not in vm["other_config"]


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
    summary = driver.apply(work(session, spec), Recorder()).summary
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
    summary = driver.apply(work(session, vm_spec(power="halted")), Recorder()).summary
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
    summary = VMDriver(session).apply(delete_work(session), Recorder()).summary
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


# What a killed run leaves behind

OTHER_TEMPLATE = "Other install media"


def half_made(session: Any, pool: Pool, *, provisioned: bool, template: str = TEMPLATE) -> str:
    """What a create killed after marking its clone leaves: ours, named web, maybe a template."""
    job = work(session, vm_spec())
    assert job.manifest is not None and job.ownership is not None
    config = vm_config(job.manifest.manifest, {}, {}, job.ownership.labels())
    vm = pool.api.VM.clone(pool.api.VM.get_by_name_label(template)[0], "web")
    keys = {**config.other_config, "bojdeploy.unfinished": "create #1"}
    pool.api.VM.set_other_config(vm, {**pool.api.VM.get_other_config(vm), **keys})
    pool.api.VM.remove_from_other_config(vm, "disks")
    if provisioned:
        pool.api.VM.provision(vm)
    return str(vm)


def names(pool: Pool) -> list[str]:
    """Names of every VM and template whose name starts with web."""
    refs = pool.api.VM.get_all()
    return sorted(n for n in (pool.api.VM.get_name_label(r) for r in refs) if n.startswith("web"))


def unkeyed_clone(pool: Pool, name: str = "web.creating") -> str:
    """A clone killed before it was marked: a template with no bojdeploy keys."""
    return str(pool.api.VM.clone(pool.api.VM.get_by_name_label(TEMPLATE)[0], name))


@pytest.mark.parametrize("provisioned", [False, True])
def test_a_half_made_vm_is_one_unfinished_resource_and_is_finished(
    session: Any, pool: Pool, provisioned: bool
) -> None:
    vm = half_made(session, pool, provisioned=provisioned)
    (obs,) = [o for o in observe_vms(session) if o.resource_name == "web"]
    assert obs.managed and obs.unfinished is not None
    assert obs.unfinished.startswith("create #1 did not finish")
    assert ("never provisioned" in obs.unfinished) is not provisioned
    job = work(session, vm_spec())
    assert job.step.action is Action.UPDATE and job.step.reason.startswith("unfinished: create #1")
    log = Recorder()
    summary = VMDriver(session).apply(job, log).summary
    assert "finishing that create" in log.text and summary.startswith("created VM web")
    (record,) = pool.vms("web")
    assert pool.api.VM.get_by_uuid(record["uuid"]) == vm
    assert record["power_state"] == "Running" and not record["is_a_template"]
    assert "bojdeploy.unfinished" not in record["other_config"]
    assert work(session, vm_spec()).step.action is Action.UNCHANGED


def test_a_clone_of_another_template_is_made_anew(session: Any, pool: Pool) -> None:
    half_made(session, pool, provisioned=False, template=OTHER_TEMPLATE)
    log = Recorder()
    VMDriver(session).apply(work(session, vm_spec()), log)
    assert "cloned from another template" in log.text
    (record,) = pool.vms("web")
    assert record["other_config"]["base_template_name"] == TEMPLATE
    assert names(pool) == ["web"]


def test_finishing_a_create_that_fails_leaves_nothing(session: Any, pool: Pool, sim: Any) -> None:
    vdis = pool.vdi_count()
    half_made(session, pool, provisioned=True)
    sim.fail_next("VM.start", "HOST_NOT_ENOUGH_FREE_MEMORY", str(64 * GIB), str(GIB))
    with pytest.raises(DriverError, match="half-built VM web and its disks were destroyed"):
        VMDriver(session).apply(work(session, vm_spec()), Recorder())
    assert names(pool) == [] and pool.vdi_count() == vdis


def test_a_leftover_clone_is_removed_before_a_create(session: Any, pool: Pool) -> None:
    unkeyed_clone(pool)
    assert not [o for o in observe_vms(session) if o.resource_name.startswith("web")]
    job = work(session, vm_spec())
    assert job.step.action is Action.CREATE
    log = Recorder()
    VMDriver(session).apply(job, log)
    assert "removing web.creating, left by an interrupted deployment" in log.text
    assert names(pool) == ["web"]


def test_a_leftover_beside_a_vm_makes_it_unfinished(session: Any, pool: Pool) -> None:
    driver = VMDriver(session)
    driver.apply(work(session, vm_spec()), Recorder())
    domid = pool.vm("web")["domid"]
    unkeyed_clone(pool)
    (obs,) = [o for o in observe_vms(session) if o.resource_name == "web"]
    assert obs.unfinished == "web.creating left by an interrupted deployment"
    job = work(session, vm_spec())
    assert job.step.action is Action.UPDATE
    driver.apply(job, Recorder())
    assert names(pool) == ["web"] and pool.vm("web")["domid"] == domid  # not restarted


def test_a_previous_vm_left_by_a_replace_goes_once_the_vm_runs(session: Any, pool: Pool) -> None:
    driver = VMDriver(session)
    driver.apply(work(session, vm_spec(), name="web"), Recorder())
    vdis = pool.vdi_count()
    aside = half_made(session, pool, provisioned=True)  # stands in for the set-aside VM
    pool.api.VM.set_name_label(aside, "web.previous")
    pool.api.VM.remove_from_other_config(aside, "bojdeploy.unfinished")
    (obs,) = [o for o in observe_vms(session) if o.resource_name == "web"]
    assert obs.unfinished == "web.previous left by an interrupted deployment"
    driver.apply(work(session, vm_spec()), Recorder())
    assert names(pool) == ["web"] and pool.vdi_count() == vdis


def test_the_recheck_of_one_vm_looks_it_up_by_name_without_listing_the_pool(
    session: Any, pool: Pool, sim: Any
) -> None:
    driver = VMDriver(session)
    driver.apply(work(session, vm_spec()), Recorder())
    unkeyed_clone(pool)
    before = len(sim.calls)
    (obs,) = driver.observe_one("web")
    called = sim.calls[before:]
    assert obs.unfinished == "web.creating left by an interrupted deployment"
    assert [name for name, _ in called] == ["VM.get_all_records_where"], called
    assert 'field "name__label" = "web"' in called[0][1][0]  # filtered by name on the server
    before = len(sim.calls)
    assert "web" in [o.resource_name for o in driver.observe()]
    assert [name for name, _ in sim.calls[before:]] == ["VM.get_all_records_where"]


def test_what_is_not_provably_ours_is_never_touched(session: Any, pool: Pool) -> None:
    vm_named_creating = unkeyed_clone(pool)  # someone's VM that happens to be named so
    pool.api.VM.remove_from_other_config(vm_named_creating, "disks")
    pool.api.VM.provision(vm_named_creating)
    theirs = half_made(session, pool, provisioned=False)  # another environment's clone
    pool.api.VM.set_name_label(theirs, "web.creating")
    pool.api.VM.remove_from_other_config(theirs, "bojdeploy.environment")
    pool.api.VM.add_to_other_config(theirs, "bojdeploy.environment", "prod")
    template_named_web = unkeyed_clone(pool, "web")  # someone's template named like the VM
    assert [o.resource_name for o in observe_vms(session)].count("web") == 0
    VMDriver(session).apply(work(session, vm_spec()), Recorder())
    for ref in (vm_named_creating, theirs, template_named_web):
        assert pool.api.VM.get_record(ref)["other_config"].get("bojdeploy.environment") != ENV
    assert names(pool) == ["web", "web", "web.creating", "web.creating"]


def test_starting_a_vm_that_was_started_meanwhile_is_fine(session: Any, pool: Pool) -> None:
    VMDriver(session).apply(work(session, vm_spec()), Recorder())
    vm = session.xenapi.VM.get_by_name_label("web")[0]
    log = Recorder()
    ops.start(session.xenapi, vm, "web", 10, log)
    assert "VM web is running (it was started meanwhile)" in log.text
    ops.shutdown(session.xenapi, vm, "web", log)
    ops.hard_shutdown(session.xenapi, vm, "web", log)
    assert pool.vm("web")["power_state"] == "Halted"


def test_deleting_a_half_made_vm_removes_it(session: Any, pool: Pool) -> None:
    vdis = pool.vdi_count()
    half_made(session, pool, provisioned=False)
    unkeyed_clone(pool)
    VMDriver(session).apply(delete_work(session), Recorder())
    assert names(pool) == [] and pool.vdi_count() == vdis
