"""Pure parts of interrupted VM work: which objects are leftovers of ours, why an owned VM is
unfinished, how observation counts them, and the saved state of a reboot."""

from __future__ import annotations

from typing import Any

import pytest

from bojdeploy.drivers.vm_resume import (
    leftover_of,
    observed_vms,
    previous_of,
    saved,
    why_unfinished,
    with_owner_keys,
)
from bojdeploy.drivers.vm_spec import Hardware

OWNED = {"bojdeploy.managed": "true", "bojdeploy.environment": "test", "bojdeploy.name": "web"}
HW = Hardware(2, 2, (1, 2, 2, 2), (("OpaqueRef:net", "aa:bb:cc:dd:ee:ff"),))


def vm(name: str, **fields: Any) -> dict[str, Any]:
    record = {
        "uuid": f"uuid-{name}",
        "name_label": name,
        "power_state": "Halted",
        "is_a_template": False,
        "is_a_snapshot": False,
        "is_default_template": False,
        "is_control_domain": False,
        "other_config": {},
    }
    return {**record, **fields}


UNKEYED_CLONE = {"base_template_name": "Debian Bookworm 12", "mac_seed": "x"}


@pytest.mark.parametrize(
    ("record", "base"),
    [
        (vm("web.creating", is_a_template=True, other_config=UNKEYED_CLONE), "web"),
        (vm("web.creating", is_a_template=True, other_config=OWNED), "web"),
        (vm("web.creating", other_config=OWNED), "web"),
        (vm("web.previous", other_config=OWNED), "web"),
        # not provably ours
        (vm("web.creating", other_config=UNKEYED_CLONE), None),  # a VM, not a killed clone
        (vm("web.creating", is_a_template=True, other_config={"mac_seed": "x"}), None),
        (vm("web.creating", is_a_template=True, other_config={"bojdeploy.x": "1"}), None),
        (vm("web.previous", other_config={}), None),
        (vm("web.previous", is_a_template=True, other_config=OWNED), None),
        (vm("web.creating", power_state="Running", other_config=OWNED), None),
        (vm("web.creating", is_a_template=True, is_default_template=True), None),
        (vm("web", other_config=OWNED), None),
        (vm("web.creating", other_config={**OWNED, "bojdeploy.name": "web.creating"}), None),
        (vm(".creating", is_a_template=True, other_config=UNKEYED_CLONE), None),
    ],
)
def test_leftover_of(record: dict[str, Any], base: str | None) -> None:
    assert leftover_of(record) == base


def test_why_unfinished() -> None:
    marked = {**OWNED, "bojdeploy.unfinished": "update #7"}
    assert why_unfinished(vm("web", other_config=marked)) == "update #7 did not finish"
    template = vm(
        "web", is_a_template=True, other_config={**OWNED, "bojdeploy.unfinished": "create #3"}
    )
    assert why_unfinished(template) == "create #3 did not finish: the VM was never provisioned"
    assert why_unfinished(vm("web", other_config=OWNED)) is None
    stranger = vm("web", other_config={"bojdeploy.unfinished": "update #1"})
    assert why_unfinished(stranger) is None


def test_observation_counts_one_resource_per_name() -> None:
    records = [
        vm("web", is_a_template=True, other_config={**OWNED, "bojdeploy.unfinished": "create #3"}),
        vm("web.creating", is_a_template=True, other_config=UNKEYED_CLONE),
        vm("db", power_state="Running", other_config=OWNED),
        vm("db.creating", is_a_template=True, other_config=UNKEYED_CLONE),
        vm("Debian Bookworm 12", is_a_template=True, is_default_template=True),
        vm("theirs", is_a_template=True, other_config={"mac_seed": "x"}),
        vm("app.previous", other_config={**OWNED, "bojdeploy.name": "app"}),
    ]
    found = {o.resource_name: o for o in observed_vms(records)}
    assert sorted(found) == ["db", "web"]
    assert found["web"].unfinished == "create #3 did not finish: the VM was never provisioned"
    assert found["db"].unfinished == "db.creating left by an interrupted deployment"


def test_saved_reboot_state_round_trips() -> None:
    other = {**OWNED, "bojdeploy.unfinished": "update #2", "mac_seed": "x"}
    entry = saved(HW, other)
    hardware, keys = previous_of(vm("web", other_config=entry)) or (None, None)
    assert hardware == HW and keys == OWNED
    assert previous_of(vm("web", other_config={"bojdeploy.previous": "{not json"})) is None
    assert previous_of(vm("web")) is None
    current = {**other, **entry, "bojdeploy.name": "new"}
    assert with_owner_keys(current, OWNED) == {**OWNED, "mac_seed": "x"}
