"""Pure translation of a VM manifest into XenAPI intentions, and comparisons with VM records."""

from __future__ import annotations

import json
import posixpath
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bojdeploy.core.manifest import VMManifest, VMSpec
from bojdeploy.core.plan import Observed
from bojdeploy.core.secrets import reveal
from bojdeploy.drivers.base import LABEL_PREFIX
from bojdeploy.errors import DriverError

XENSTORE_VALUE_LIMIT = 4096  # bytes per value
CLOUD_INIT = "vm-data/cloud-init/"
OWNER_PREFIX = "bojdeploy."
MANAGED_KEY = OWNER_PREFIX + "managed"
HASH_KEY = OWNER_PREFIX + "config-hash"
# The xenstore keys bojdeploy wrote last time, so keys dropped from a manifest are removed.
XENSTORE_KEYS = OWNER_PREFIX + "xenstore-keys"
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class VIFWant:
    """One wanted VIF: a network name_label or uuid, and a MAC ("" lets Xen choose)."""

    network: str
    mac: str = ""


@dataclass(frozen=True)
class VMConfig:
    """What the manifest asks of Xen, secrets revealed: the driver's whole intention."""

    name: str
    template: str
    vcpus: int
    memory: int
    networks: tuple[VIFWant, ...]
    xenstore: dict[str, str]
    other_config: dict[str, str]  # ownership keys, config hash included
    power: str
    wait_start: float
    wait_ip: float
    on_change: str


@dataclass(frozen=True)
class Hardware:
    """The settings that need a halted VM: VCPUs, memory limits and VIFs in device order."""

    vcpus_max: int
    vcpus_at_startup: int
    memory: tuple[int, int, int, int]  # static_min, static_max, dynamic_min, dynamic_max
    vifs: tuple[tuple[str, str], ...]  # (network ref, MAC); "" MAC = any


def vm_config(
    manifest: VMManifest,
    files: Mapping[str, str],
    secrets: Mapping[str, str],
    labels: Mapping[str, str],
) -> VMConfig:
    """The XenAPI intention for `manifest`; `labels` are the io.bojdeploy.* ownership labels."""
    spec = VMSpec.model_validate(reveal(manifest.spec.model_dump(), secrets))
    name = manifest.resource_name
    environment = labels[LABEL_PREFIX + "environment"]
    xenstore = xenstore_data(name, spec, environment, user_data(spec, files, secrets))
    return VMConfig(
        name=name,
        template=spec.template,
        vcpus=spec.vcpus,
        memory=spec.memory,
        networks=tuple(VIFWant(n.network, (n.mac or "").lower()) for n in spec.networks),
        xenstore=xenstore,
        other_config=owner_keys(labels, xenstore),
        power=spec.power,
        wait_start=spec.wait.start,
        wait_ip=spec.wait.ip,
        on_change=spec.on_change,
    )


def user_data(spec: VMSpec, files: Mapping[str, str], secrets: Mapping[str, str]) -> str | None:
    """The rendered user-data: inline, or the `user_data_file` the loader read and rendered."""
    cloud_init = spec.cloud_init
    if cloud_init is None:
        return None
    if cloud_init.user_data_file is None:
        return cloud_init.user_data
    path = posixpath.normpath(cloud_init.user_data_file).lstrip("/")
    if path not in files:
        raise DriverError(f"spec.cloud_init.user_data_file {path} was not read from the repository")
    return str(reveal(files[path], secrets))


def xenstore_data(
    name: str, spec: VMSpec, environment: str, user_data: str | None
) -> dict[str, str]:
    """vm-data/cloud-init/{datasource,role,environment,user-data}, params, then custom keys."""
    ci = spec.cloud_init
    entries = {
        "datasource": ci.datasource if ci else None,
        "role": ci.role if ci else None,
        "environment": environment,
        "user-data": user_data,
    }
    # Validation refuses params and xenstore keys that collide with these.
    data = {CLOUD_INIT + key: value for key, value in entries.items() if value is not None}
    for key, value in (ci.params if ci else {}).items():
        data[CLOUD_INIT + key] = value
    data.update(spec.xenstore)
    check_sizes(name, data)
    return data


def check_sizes(name: str, data: Mapping[str, str]) -> None:
    """Refuse values xenstore cannot hold, naming the key."""
    for key, value in data.items():
        size = len(value.encode())
        if size > XENSTORE_VALUE_LIMIT:
            raise DriverError(
                f"VM {name}: xenstore value {key} is {size} bytes, more than the "
                f"{XENSTORE_VALUE_LIMIT} bytes xenstore allows per value (nothing was changed); "
                "serve larger user-data from spec.cloud_init.datasource instead"
            )


def owner_keys(labels: Mapping[str, str], xenstore: Mapping[str, str]) -> dict[str, str]:
    """other_config ownership keys: io.bojdeploy.X -> bojdeploy.X, plus the xenstore key list."""
    keys = {OWNER_PREFIX + k.removeprefix(LABEL_PREFIX): v for k, v in labels.items()}
    keys[XENSTORE_KEYS] = json.dumps(sorted(xenstore))
    return keys


def updated_xenstore(
    current: Mapping[str, str], other_config: Mapping[str, str], wanted: Mapping[str, str]
) -> dict[str, str]:
    """The VM's new xenstore_data: Xen's own keys kept, the ones bojdeploy wrote replaced."""
    try:
        written = set(json.loads(other_config.get(XENSTORE_KEYS, "[]")))
    except (TypeError, ValueError):
        written = set()
    kept = {k: v for k, v in current.items() if k not in written}
    return {**kept, **wanted}


def disks_without_sr(disks: str) -> bool:
    """Whether the provisioning XML (other_config "disks") has a disk with an empty sr."""
    return any(not disk.get("sr") for disk in _provision_xml(disks))


def with_sr(disks: str, sr_uuid: str) -> str:
    """The provisioning XML with each empty sr set to `sr_uuid`, as `xe vm-install` does."""
    root = _provision_xml(disks)
    for disk in root:
        if not disk.get("sr"):
            disk.set("sr", sr_uuid)
    return ET.tostring(root, encoding="unicode")


def _provision_xml(disks: str) -> ET.Element:
    try:
        return ET.fromstring(disks)
    except ET.ParseError as e:
        raise DriverError(f"the template's other_config disks is not provisioning XML: {e}") from e


def is_uuid(text: str) -> bool:
    """Whether `text` looks like a Xen object uuid."""
    return bool(UUID_RE.match(text))


def is_owned(other_config: Mapping[str, str]) -> bool:
    """Whether a VM carries bojdeploy.managed=true."""
    return other_config.get(MANAGED_KEY) == "true"


def describe_vm(record: Mapping[str, Any]) -> str:
    """'uuid (template)', '(snapshot)' or '(VM, Running)': how a candidate is named in errors."""
    if record.get("is_a_snapshot"):
        what = "snapshot"
    elif record.get("is_a_template"):
        what = "template"
    else:
        what = f"VM, {record.get('power_state')}"
    return f"{record.get('uuid')} ({what})"


def pick_template(wanted: str, records: Mapping[str, Mapping[str, Any]]) -> str:
    """The ref of the one halted template (not a snapshot) among `records`, else DriverError."""
    fits = [
        ref
        for ref, rec in records.items()
        if rec.get("is_a_template")
        and not rec.get("is_a_snapshot")
        and rec.get("power_state") == "Halted"
    ]
    if len(fits) == 1:
        return fits[0]
    found = ", ".join(describe_vm(rec) for rec in records.values()) or "none"
    need = "exactly one halted template that is not a snapshot"
    raise DriverError(f"template {wanted!r}: need {need}; candidates: {found}")


def pick_one(what: str, wanted: str, refs: Sequence[str]) -> str:
    """The only ref found for `wanted`, else DriverError saying how many there were."""
    if len(refs) == 1:
        return refs[0]
    if not refs:
        raise DriverError(f"{what} {wanted!r} not found")
    raise DriverError(f"{what} {wanted!r} is ambiguous: {len(refs)} match ({', '.join(refs)})")


def hardware_of(record: Mapping[str, Any], vifs: Sequence[Mapping[str, Any]]) -> Hardware:
    """The Hardware a VM record and its VIF records describe (int64 strings accepted)."""
    ordered = sorted(vifs, key=lambda vif: int(vif["device"]))
    return Hardware(
        vcpus_max=int(record["VCPUs_max"]),
        vcpus_at_startup=int(record["VCPUs_at_startup"]),
        memory=(
            int(record["memory_static_min"]),
            int(record["memory_static_max"]),
            int(record["memory_dynamic_min"]),
            int(record["memory_dynamic_max"]),
        ),
        vifs=tuple((str(v["network"]), str(v["MAC"]).lower()) for v in ordered),
    )


def wanted_hardware(config: VMConfig, current: Hardware, network_refs: Sequence[str]) -> Hardware:
    """What `config` asks for, from `current`: static_min kept unless above the memory."""
    memory = config.memory
    return Hardware(
        vcpus_max=config.vcpus,
        vcpus_at_startup=config.vcpus,
        memory=(min(current.memory[0], memory), memory, memory, memory),
        vifs=tuple(
            (ref, want.mac) for ref, want in zip(network_refs, config.networks, strict=True)
        ),
    )


def vifs_match(current: Sequence[tuple[str, str]], wanted: Sequence[tuple[str, str]]) -> bool:
    """Same networks in the same order; a wanted MAC of "" accepts any MAC."""
    if len(current) != len(wanted):
        return False
    return all(
        net == want_net and (not want_mac or mac == want_mac)
        for (net, mac), (want_net, want_mac) in zip(current, wanted, strict=True)
    )


def hardware_changes(current: Hardware, wanted: Hardware) -> list[str]:
    """The spec fields (vcpus, memory, networks) whose change needs the VM halted."""
    changes = []
    if (current.vcpus_max, current.vcpus_at_startup) != (wanted.vcpus_max, wanted.vcpus_at_startup):
        changes.append("vcpus")
    if current.memory != wanted.memory:
        changes.append("memory")
    if not vifs_match(current.vifs, wanted.vifs):
        changes.append("networks")
    return changes


def vcpu_calls(current: Hardware, wanted: Hardware) -> list[tuple[str, str]]:
    """(VM method, value) pairs keeping 0 < VCPUs_at_startup <= VCPUs_max at every step."""
    calls = []
    if wanted.vcpus_max != current.vcpus_max:
        calls.append(("set_VCPUs_max", str(wanted.vcpus_max)))
    if wanted.vcpus_at_startup != current.vcpus_at_startup:
        calls.append(("set_VCPUs_at_startup", str(wanted.vcpus_at_startup)))
    if wanted.vcpus_max < current.vcpus_max:
        calls.reverse()  # decreasing: lower at_startup first, then max
    return calls


def memory_args(memory: tuple[int, int, int, int]) -> tuple[str, str, str, str]:
    """set_memory_limits arguments as int64 strings, checked against xapi's order rule."""
    static_min, static_max, dynamic_min, dynamic_max = memory
    if not static_min <= dynamic_min <= dynamic_max <= static_max:
        raise DriverError(f"memory limits {memory} violate static_min <= dynamic <= static_max")
    return (str(static_min), str(static_max), str(dynamic_min), str(dynamic_max))


def vif_record(vm: str, network: str, mtu: str, device: int, mac: str) -> dict[str, Any]:
    """The VIF.create record for device `device` of `vm` on `network` ("" MAC: Xen picks)."""
    return {
        "device": str(device),
        "network": network,
        "VM": vm,
        "MAC": mac,
        "MTU": mtu,
        "other_config": {},
        "qos_algorithm_type": "",
        "qos_algorithm_params": {},
    }


def verify(name: str, record: Mapping[str, Any], wanted: Hardware, power: str) -> list[str]:
    """What differs between the VM as found after the apply and what was asked for."""
    found = hardware_of(record, [])
    problems = []
    if str(record["power_state"]).lower() != power:
        problems.append(f"power state is {record['power_state']}, not {power}")
    if (found.vcpus_max, found.vcpus_at_startup) != (wanted.vcpus_max, wanted.vcpus_at_startup):
        problems.append(f"VCPUs are {found.vcpus_at_startup}/{found.vcpus_max}")
    if found.memory[1:] != wanted.memory[1:]:
        problems.append(f"memory limits are {found.memory}")
    return [f"VM {name}: {p} after the apply" for p in problems]


def observed_vm(record: Mapping[str, Any]) -> Observed:
    """An Observed value from a VM record: ownership from other_config, state = power_state."""
    other = record.get("other_config") or {}
    managed = is_owned(other)
    return Observed(
        kind="vm",
        resource_name=str(record["name_label"]),
        managed=managed,
        name=other.get(OWNER_PREFIX + "name") if managed else None,
        environment=other.get(OWNER_PREFIX + "environment") if managed else None,
        config_hash=other.get(HASH_KEY) if managed else None,
        state=str(record["power_state"]),
        id=str(record["uuid"]),
        manifest=other.get(OWNER_PREFIX + "manifest") if managed else None,
        deployment_id=_int(other.get(OWNER_PREFIX + "deployment-id")) if managed else None,
        repository=other.get(OWNER_PREFIX + "repository") if managed else None,
    )


def _int(value: Any) -> int | None:
    """An other_config integer value, or None when missing or malformed."""
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
