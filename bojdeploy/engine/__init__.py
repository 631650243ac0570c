"""The engine: one orchestrator for every front end (load, select, observe, plan, apply, record).

Front ends call these functions and never a driver; the engine reaches targets only through
`bojdeploy.drivers` and records only through `bojdeploy.store`. The names below load on first
use, so a command that only validates does not import the drivers and the store.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bojdeploy.engine.deploy import apply
    from bojdeploy.engine.observe import (
        make_plan_for,
        observe,
        observed_from_records,
        resource_name_of,
        unprunable,
    )
    from bojdeploy.engine.prepare import (
        Prepared,
        desired_state,
        narrow,
        prepare,
        secret_values,
    )

_WHERE = {
    "apply": "deploy",
    "make_plan_for": "observe",
    "observe": "observe",
    "observed_from_records": "observe",
    "resource_name_of": "observe",
    "unprunable": "observe",
    "Prepared": "prepare",
    "desired_state": "prepare",
    "narrow": "prepare",
    "prepare": "prepare",
    "secret_values": "prepare",
}
__all__ = [
    "Prepared",
    "apply",
    "desired_state",
    "make_plan_for",
    "narrow",
    "observe",
    "observed_from_records",
    "prepare",
    "resource_name_of",
    "secret_values",
    "unprunable",
]


def __getattr__(name: str) -> Any:
    """`engine.apply` and the rest, imported when first asked for."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
