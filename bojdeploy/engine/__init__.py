"""The engine: one orchestrator for every front end (load, select, observe, plan, apply, record).

Front ends call these functions and never a driver; the engine reaches targets only through
`bojdeploy.drivers` and records only through `bojdeploy.store`.
"""

from __future__ import annotations

from bojdeploy.engine.observe import (
    observe,
    observed_from_records,
    resource_name_of,
    unprunable,
)
from bojdeploy.engine.prepare import Prepared, desired_state, narrow, prepare, secret_values
from bojdeploy.engine.rollout import apply, make_plan_for  # a fleet's hosts, or the one target

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
