"""Lookups of the VM driver: the pool's VMs, one VM with its leftovers, templates, networks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any, NamedTuple

import XenAPI

from bojdeploy.core.plan import Observed
from bojdeploy.drivers.vm_resume import CREATING_SUFFIX, PREVIOUS_SUFFIX, observed_vms
from bojdeploy.drivers.vm_spec import (
    VIFWant,
    describe_vm,
    is_owned,
    is_uuid,
    pick_one,
    pick_template,
)
from bojdeploy.drivers.xen_errors import xen_errors
from bojdeploy.errors import ConnectError, DriverError

# Templates too (an owned one is an interrupted create, a `<name>.creating` one a leftover),
# but not the pool's many default templates: no clone is one.
OBSERVE_WHERE = (
    'field "is_a_snapshot" = "false" and field "is_control_domain" = "false" '
    'and field "is_default_template" = "false"'
)


class Networks(NamedTuple):
    """The network ref of each wanted VIF, and the MTU of each network (a VIF's MTU is its)."""

    refs: list[str]
    mtus: dict[str, str]


def observe_vms(session: Any) -> list[Observed]:
    """Every VM of the pool, and owned templates (interrupted creates), in one call."""
    with xen_errors("cannot list the VMs on Xen", refused=ConnectError):  # nothing changed yet
        records = session.xenapi.VM.get_all_records_where(OBSERVE_WHERE)
    return observed_vms(records.values())


def observe_vm(session: Any, name: str) -> list[Observed]:
    """The VM (or owned template) named `name`, as observe_vms sees it, without listing the pool.

    One filtered call finds `name` and the leftovers that would make it unfinished
    (`<name>.creating`, `<name>.previous`) with their records.
    """
    labels = (name, name + CREATING_SUFFIX, name + PREVIOUS_SUFFIX)
    with xen_errors(f"cannot look up VM {name} on Xen", refused=ConnectError):  # nothing changed
        records = _records_where(session.xenapi.VM, labels, OBSERVE_WHERE)
    return [o for o in observed_vms(records.values()) if o.resource_name == name]


def _records_where(cls: Any, labels: Sequence[str], where: str = "") -> dict[str, dict[str, Any]]:
    """Records of the `cls` objects named one of `labels` (and matching `where`), in one call;
    a name the filter language cannot quote is looked up by name, then by record."""
    if any('"' in label for label in labels):
        records = {}
        for label in labels:
            for ref in cls.get_by_name_label(label):
                with suppress(XenAPI.Failure):  # destroyed since the lookup
                    records[ref] = cls.get_record(ref)
        return records
    named = " or ".join(f'field "name__label" = "{label}"' for label in labels)
    return dict(cls.get_all_records_where(f"({where}) and ({named})" if where else named))


def find_template(
    api: Any, wanted: str, also: Sequence[str] = ()
) -> tuple[str, dict[str, Any], dict[str, dict[str, Any]]]:
    """The one halted template named (or with uuid) `wanted`, its record, and the records of
    the VMs named one of `also`, in one call where it can; DriverError naming candidates."""
    with xen_errors(f"cannot look up template {wanted!r}"):
        by_uuid = _by_uuid(api.VM, wanted, "VM")
        labels = list(also) if by_uuid else [wanted, *also]
        found = _records_where(api.VM, labels) if labels else {}
    if not by_uuid:
        by_uuid = {ref: rec for ref, rec in found.items() if rec["name_label"] == wanted}
    ref = pick_template(wanted, by_uuid)
    named = {ref: rec for ref, rec in found.items() if rec["name_label"] in also}
    return ref, by_uuid[ref], named


def _by_uuid(cls: Any, wanted: str, class_name: str) -> dict[str, dict[str, Any]]:
    """The record of the object with uuid `wanted` (when it looks like one and exists)."""
    if not is_uuid(wanted):
        return {}
    try:
        ref = cls.get_by_uuid(wanted)
    except XenAPI.Failure as e:
        if e.details[:2] != ["UUID_INVALID", class_name]:
            raise
        return {}
    return {ref: cls.get_record(ref)}


def find_networks(api: Any, wants: Sequence[VIFWant]) -> Networks:
    """The network of each wanted VIF, by name_label or uuid (exactly one match each), with the
    MTU of each network found."""
    found: dict[str, str] = {}
    mtus: dict[str, str] = {}
    for want in wants:
        if want.network not in found:
            with xen_errors(f"cannot look up network {want.network!r}"):
                records = _by_uuid(api.network, want.network, "network") or _records_where(
                    api.network, [want.network]
                )
            found[want.network] = pick_one("network", want.network, list(records))
            mtus.update({ref: str(rec["MTU"]) for ref, rec in records.items()})
    return Networks([found[want.network] for want in wants], mtus)


def vm_by_uuid(api: Any, uuid: str) -> str | None:
    """The VM with `uuid`, or None when it is gone."""
    with xen_errors(f"cannot look up VM {uuid}"):
        try:
            return str(api.VM.get_by_uuid(uuid))
        except XenAPI.Failure as e:
            if e.details and e.details[0] == "UUID_INVALID":
                return None
            raise


def vms_labelled(api: Any, labels: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Records of every VM, template and snapshot named one of `labels`, in one call."""
    with xen_errors(f"cannot look up VM {labels[0]}"):
        return _records_where(api.VM, labels)


def vms_named(
    api: Any, name: str, known: Mapping[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Records of the VMs (and owned templates, not snapshots) whose name_label is `name`;
    `known` as vms_labelled returned it for labels that include `name`."""
    records = vms_labelled(api, [name]) if known is None else known
    return {
        ref: rec
        for ref, rec in records.items()
        if rec["name_label"] == name
        and (not rec["is_a_template"] or is_owned(rec["other_config"]))
        and not rec["is_a_snapshot"]
    }


def check_absent(api: Any, name: str, known: Mapping[str, dict[str, Any]] | None = None) -> None:
    """Refuse to create a VM whose name is taken (owned by us or not: never touch it here)."""
    taken = vms_named(api, name, known)
    if taken:
        found = ", ".join(describe_vm(rec) for rec in taken.values())
        raise DriverError(
            f"a VM named {name} already exists ({found}); refusing to create another "
            "(a VM without bojdeploy ownership keys in other_config is never touched)"
        )
