"""vm_config and friends: a VM manifest -> XenAPI intentions, tested by equality."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from bojdeploy.core.manifest import VMManifest
from bojdeploy.core.plan import Observed
from bojdeploy.drivers.base import Ownership
from bojdeploy.drivers.vm_spec import (
    Hardware,
    VIFWant,
    VMConfig,
    hardware_changes,
    hardware_of,
    memory_args,
    observed_vm,
    pick_one,
    pick_template,
    updated_xenstore,
    vcpu_calls,
    verify,
    vif_record,
    vifs_match,
    vm_config,
    wanted_hardware,
)
from bojdeploy.drivers.vm_wait import guest_ip, task_result
from bojdeploy.drivers.xen_errors import failure_text
from bojdeploy.errors import DriverError

GIB = 2**30
OWNERSHIP = Ownership(
    name="web",
    kind="vm",
    environment="staging",
    config_hash="abc123",
    deployment_id=7,
    git_commit="deadbeef",
    repository="ops/deploy",
    manifest="deploy/web.yml",
)
OWNER_KEYS = {
    "bojdeploy.managed": "true",
    "bojdeploy.name": "web",
    "bojdeploy.kind": "vm",
    "bojdeploy.environment": "staging",
    "bojdeploy.config-hash": "abc123",
    "bojdeploy.deployment-id": "7",
    "bojdeploy.git-commit": "deadbeef",
    "bojdeploy.repository": "ops/deploy",
    "bojdeploy.manifest": "deploy/web.yml",
}


def manifest(**spec: Any) -> VMManifest:
    """A VM manifest named web (template and memory defaulted)."""
    return VMManifest.model_validate(
        {
            "apiVersion": "bojdeploy/v1",
            "kind": "VM",
            "metadata": {"name": "web"},
            "spec": {"template": "Debian Bookworm 12", "memory": "2GiB", **spec},
        }
    )


def config(
    files: dict[str, str] | None = None, secrets: dict[str, str] | None = None, **spec: Any
) -> VMConfig:
    return vm_config(manifest(**spec), files or {}, secrets or {}, OWNERSHIP.labels())


def test_minimal_manifest() -> None:
    xenstore = {"vm-data/cloud-init/environment": "staging"}
    assert config() == VMConfig(
        name="web",
        template="Debian Bookworm 12",
        vcpus=1,
        memory=2 * GIB,
        networks=(),
        xenstore=xenstore,
        other_config={**OWNER_KEYS, "bojdeploy.xenstore-keys": json.dumps(sorted(xenstore))},
        power="running",
        wait_start=120.0,
        wait_ip=300.0,
        on_change="reboot",
    )


def test_full_manifest_in_xenstore_order_with_secrets_revealed() -> None:
    cfg = config(
        files={"cloud-init/web.yaml": "#cloud-config\npassword: __BOJSECRET_PW__\n"},
        secrets={"PW": "hunter22"},
        vcpus=4,
        networks=[
            {"network": "Pool-wide network associated with eth0"},
            {"network": "backend", "mac": "AA:BB:CC:00:11:22"},
        ],
        cloud_init={
            "datasource": "http://cfg.example/nocloud/staging/web/",
            "role": "web",
            "user_data_file": "./cloud-init/web.yaml",
            "params": {"tier": "frontend", "token": "__BOJSECRET_PW__"},
        },
        xenstore={"vm-data/custom/key": "value"},
        power="halted",
        wait={"start": "30s", "ip": 0},
        on_change="refuse",
    )
    assert list(cfg.xenstore.items()) == [
        ("vm-data/cloud-init/datasource", "http://cfg.example/nocloud/staging/web/"),
        ("vm-data/cloud-init/role", "web"),
        ("vm-data/cloud-init/environment", "staging"),
        ("vm-data/cloud-init/user-data", "#cloud-config\npassword: hunter22\n"),
        ("vm-data/cloud-init/tier", "frontend"),
        ("vm-data/cloud-init/token", "hunter22"),
        ("vm-data/custom/key", "value"),
    ]
    assert cfg.networks == (
        VIFWant("Pool-wide network associated with eth0", ""),
        VIFWant("backend", "aa:bb:cc:00:11:22"),
    )
    assert (cfg.vcpus, cfg.power, cfg.wait_start, cfg.wait_ip, cfg.on_change) == (
        4,
        "halted",
        30.0,
        0.0,
        "refuse",
    )
    assert json.loads(cfg.other_config["bojdeploy.xenstore-keys"]) == sorted(cfg.xenstore)


def test_inline_user_data() -> None:
    cfg = config(cloud_init={"user_data": "#cloud-config\n{}\n"})
    assert cfg.xenstore["vm-data/cloud-init/user-data"] == "#cloud-config\n{}\n"


def test_user_data_file_not_read_is_an_error() -> None:
    with pytest.raises(DriverError, match="cloud-init/web.yaml was not read"):
        config(cloud_init={"user_data_file": "cloud-init/web.yaml"})


def test_value_too_large_for_xenstore_names_the_key() -> None:
    big = "#cloud-config\n" + "x" * 5000
    with pytest.raises(DriverError) as caught:
        config(files={"big.yaml": big}, cloud_init={"user_data_file": "big.yaml"})
    message = str(caught.value)
    assert "vm-data/cloud-init/user-data" in message and "5014 bytes" in message
    assert "4096" in message


def test_exactly_4096_bytes_fits() -> None:
    cfg = config(xenstore={"vm-data/custom/blob": "é" * 2048})
    assert len(cfg.xenstore["vm-data/custom/blob"].encode()) == 4096


@pytest.mark.parametrize(
    ("spec", "culprit"),
    [
        ({"cloud_init": {"role": "web", "params": {"role": "db"}}}, "params cannot set role"),
        ({"cloud_init": {"params": {"environment": "prod"}}}, "params cannot set environment"),
        ({"xenstore": {"vm-data/cloud-init/environment": "prod"}}, "written from cloud_init"),
    ],
)
def test_two_fields_writing_one_key_is_refused_by_validation(
    spec: dict[str, Any], culprit: str
) -> None:
    with pytest.raises(ValidationError, match=culprit):
        config(**spec)


def test_updated_xenstore_keeps_xen_keys_and_drops_keys_no_longer_wanted() -> None:
    current = {
        "vm-data": "",
        "vm-data/mmio-hole-size": "268435456",
        "vm-data/custom/old": "1",
        "vm-data/cloud-init/role": "web",
    }
    ledger = {
        "bojdeploy.xenstore-keys": json.dumps(["vm-data/cloud-init/role", "vm-data/custom/old"])
    }
    wanted = {"vm-data/cloud-init/role": "db"}
    assert updated_xenstore(current, ledger, wanted) == {
        "vm-data": "",
        "vm-data/mmio-hole-size": "268435456",
        "vm-data/cloud-init/role": "db",
    }
    assert updated_xenstore(current, {}, wanted) == {**current, **wanted}


def hw(
    vcpus: int = 2,
    at_startup: int | None = None,
    memory: tuple[int, int, int, int] | None = None,
    vifs: tuple[tuple[str, str], ...] = (),
) -> Hardware:
    mem = memory or (GIB, 2 * GIB, 2 * GIB, 2 * GIB)
    return Hardware(vcpus, vcpus if at_startup is None else at_startup, mem, vifs)


@pytest.mark.parametrize(
    ("current", "wanted", "calls"),
    [
        (hw(2), hw(4), [("set_VCPUs_max", "4"), ("set_VCPUs_at_startup", "4")]),
        (hw(4), hw(2), [("set_VCPUs_at_startup", "2"), ("set_VCPUs_max", "2")]),
        (hw(4, at_startup=1), hw(2), [("set_VCPUs_at_startup", "2"), ("set_VCPUs_max", "2")]),
        (hw(4, at_startup=1), hw(4), [("set_VCPUs_at_startup", "4")]),
        (hw(2), hw(2), []),
    ],
)
def test_vcpu_calls_keep_at_startup_below_max(
    current: Hardware, wanted: Hardware, calls: list[tuple[str, str]]
) -> None:
    assert vcpu_calls(current, wanted) == calls
    vmax, start = current.vcpus_max, current.vcpus_at_startup
    for method, value in calls:
        if method == "set_VCPUs_max":
            vmax = int(value)
        else:
            start = int(value)
        assert 0 < start <= vmax


def test_wanted_hardware_keeps_static_min_unless_above_the_memory() -> None:
    cfg = config(
        memory="4GiB", networks=[{"network": "a"}, {"network": "b", "mac": "aa:bb:cc:dd:ee:ff"}]
    )
    template = hw(1, memory=(512 * 2**20, GIB, GIB, GIB))
    assert wanted_hardware(cfg, template, ["OpaqueRef:a", "OpaqueRef:b"]) == Hardware(
        1,
        1,
        (512 * 2**20, 4 * GIB, 4 * GIB, 4 * GIB),
        (("OpaqueRef:a", ""), ("OpaqueRef:b", "aa:bb:cc:dd:ee:ff")),
    )
    small = config(memory="256M")
    assert wanted_hardware(small, template, []).memory == (256 * 2**20,) * 4


def test_memory_args_are_int64_strings_in_valid_order() -> None:
    assert memory_args((GIB, 2 * GIB, 2 * GIB, 2 * GIB)) == (
        str(GIB),
        str(2 * GIB),
        str(2 * GIB),
        str(2 * GIB),
    )
    with pytest.raises(DriverError, match="static_min <= dynamic"):
        memory_args((GIB, GIB, 2 * GIB, 2 * GIB))


def test_hardware_changes() -> None:
    nets = (("OpaqueRef:a", "aa:bb:cc:dd:ee:ff"),)
    assert hardware_changes(hw(2, vifs=nets), hw(2, vifs=(("OpaqueRef:a", ""),))) == []
    assert hardware_changes(hw(2), hw(4)) == ["vcpus"]
    assert hardware_changes(hw(2), hw(2, memory=(GIB, 4 * GIB, 4 * GIB, 4 * GIB))) == ["memory"]
    assert hardware_changes(hw(2, vifs=nets), hw(2)) == ["networks"]


def test_vifs_match_in_order_and_by_mac_when_given() -> None:
    current = [("n1", "aa:aa:aa:aa:aa:aa"), ("n2", "bb:bb:bb:bb:bb:bb")]
    assert vifs_match(current, [("n1", ""), ("n2", "bb:bb:bb:bb:bb:bb")])
    assert not vifs_match(current, [("n2", ""), ("n1", "")])
    assert not vifs_match(current, [("n1", "cc:cc:cc:cc:cc:cc"), ("n2", "")])
    assert not vifs_match(current, [("n1", "")])


def test_hardware_of_reads_int64_strings_and_orders_vifs_by_device() -> None:
    record = {
        "VCPUs_max": "4",
        "VCPUs_at_startup": "2",
        "memory_static_min": "1",
        "memory_static_max": "8",
        "memory_dynamic_min": "4",
        "memory_dynamic_max": "8",
    }
    vifs = [
        {"device": "1", "network": "n2", "MAC": "BB:BB:BB:BB:BB:BB"},
        {"device": "0", "network": "n1", "MAC": "aa:aa:aa:aa:aa:aa"},
    ]
    assert hardware_of(record, vifs) == Hardware(
        4, 2, (1, 8, 4, 8), (("n1", "aa:aa:aa:aa:aa:aa"), ("n2", "bb:bb:bb:bb:bb:bb"))
    )


def test_vif_record() -> None:
    assert vif_record("OpaqueRef:vm", "OpaqueRef:net", "1500", 1, "") == {
        "device": "1",
        "network": "OpaqueRef:net",
        "VM": "OpaqueRef:vm",
        "MAC": "",
        "MTU": "1500",
        "other_config": {},
        "qos_algorithm_type": "",
        "qos_algorithm_params": {},
    }


def vm_record(
    uuid: str, template: bool = True, snapshot: bool = False, power: str = "Halted"
) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "is_a_template": template,
        "is_a_snapshot": snapshot,
        "power_state": power,
    }


def test_pick_template_demands_exactly_one_halted_template() -> None:
    assert (
        pick_template(
            "deb",
            {
                "r1": vm_record("u1"),
                "r2": vm_record("u2", snapshot=True),
                "r3": vm_record("u3", template=False),
            },
        )
        == "r1"
    )
    with pytest.raises(DriverError) as none:
        pick_template("deb", {"r3": vm_record("u3", template=False, power="Running")})
    assert "candidates: u3 (VM, Running)" in str(none.value)
    with pytest.raises(DriverError) as two:
        pick_template("deb", {"r1": vm_record("u1"), "r2": vm_record("u2")})
    assert "u1 (template), u2 (template)" in str(two.value)
    with pytest.raises(DriverError, match="candidates: none"):
        pick_template("deb", {})


def test_pick_one() -> None:
    assert pick_one("network", "eth0", ["r1"]) == "r1"
    with pytest.raises(DriverError, match="network 'eth0' not found"):
        pick_one("network", "eth0", [])
    with pytest.raises(DriverError, match="ambiguous: 2 match"):
        pick_one("network", "eth0", ["r1", "r2"])


def test_verify_names_every_difference() -> None:
    record = {
        "power_state": "Halted",
        "VCPUs_max": "2",
        "VCPUs_at_startup": "2",
        "memory_static_min": "1",
        "memory_static_max": str(GIB),
        "memory_dynamic_min": str(GIB),
        "memory_dynamic_max": str(GIB),
    }
    wanted = hw(2, memory=(1, GIB, GIB, GIB))
    assert verify("web", record, wanted, "halted") == []
    assert verify("web", record, hw(4), "running") == [
        "VM web: power state is Halted, not running after the apply",
        "VM web: VCPUs are 2/2 after the apply",
        f"VM web: memory limits are (1, {GIB}, {GIB}, {GIB}) after the apply",
    ]


def test_observed_vm_from_ownership_keys() -> None:
    owned = {
        "uuid": "u1",
        "name_label": "web",
        "power_state": "Running",
        "other_config": {**OWNER_KEYS, "mac_seed": "x"},
    }
    assert observed_vm(owned) == Observed(
        kind="vm",
        resource_name="web",
        managed=True,
        name="web",
        environment="staging",
        config_hash="abc123",
        state="Running",
        id="u1",
        manifest="deploy/web.yml",
        deployment_id=int(OWNER_KEYS["bojdeploy.deployment-id"]),
        repository=OWNER_KEYS["bojdeploy.repository"],
    )
    stranger = {
        "uuid": "u2",
        "name_label": "web",
        "power_state": "Halted",
        "other_config": {"bojdeploy.name": "web"},
    }
    assert observed_vm(stranger) == Observed(
        kind="vm", resource_name="web", managed=False, state="Halted", id="u2"
    )


def test_failure_text() -> None:
    assert (
        failure_text(["HOST_NOT_ENOUGH_FREE_MEMORY", "68719476736", "1024"])
        == "HOST_NOT_ENOUGH_FREE_MEMORY: 68719476736, 1024"
    )
    assert (
        failure_text(["MEMORY_CONSTRAINT_VIOLATION_ORDER"]) == "MEMORY_CONSTRAINT_VIOLATION_ORDER"
    )


def test_guest_ip_prefers_device_0() -> None:
    assert (
        guest_ip({"0/ipv6/0": "fe80::1", "0/ip": "192.0.2.10", "1/ip": "198.51.100.2"})
        == "192.0.2.10"
    )
    assert guest_ip({"0/ipv4/0": "192.0.2.11"}) == "192.0.2.11"
    assert guest_ip({"1/ip": "198.51.100.2", "0/ip": ""}) == "198.51.100.2"
    assert guest_ip({"0/ipv6/0": "fe80::1"}) is None


def test_task_result_decodes_xmlrpc_values() -> None:
    assert task_result("<value>OpaqueRef:1234</value>") == "OpaqueRef:1234"
    assert task_result("") is None
