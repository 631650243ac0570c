"""The engine: one orchestrator for every front end (load, select, observe, plan, apply, record).

Front ends call these functions and never a driver; the engine reaches targets only through
`bojdeploy.drivers` and records only through `bojdeploy.store`. The functions below load on
first use, so a command that only validates imports neither the drivers nor the store.
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bojdeploy.engine.observe import (
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
    from bojdeploy.engine.rollout import apply, make_plan_for  # a fleet's hosts, or one target

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
_WHERE = {
    "apply": "rollout",  # a fleet's hosts, or the one target
    "make_plan_for": "rollout",
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


def _loaded_on_use(name: str) -> property:
    """`engine.<name>`, imported when first read. Importing the submodules `apply`, `observe`
    and `prepare` sets a package attribute of their name: that never hides the function, while
    a value set by hand (a test's stand-in) does."""

    def get(module: ModuleType) -> Any:
        if name in module.__dict__["_set"]:
            return module.__dict__["_set"][name]
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)

    def put(module: ModuleType, value: Any) -> None:
        if not isinstance(value, ModuleType):
            module.__dict__["_set"][name] = value

    def forget(module: ModuleType) -> None:
        module.__dict__["_set"].pop(name, None)

    return property(get, put, forget)


class _Engine(ModuleType):
    """This package, with its functions loaded on use."""


for _name in _WHERE:
    setattr(_Engine, _name, _loaded_on_use(_name))
_set: dict[str, Any] = {}
sys.modules[__name__].__class__ = _Engine
