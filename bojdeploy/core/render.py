"""Plans as a user reads them: Terraform-like text, JSON-able dicts, markdown, descriptions."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any

from bojdeploy.core.plan import (
    REASON_CONFIG_CHANGED,
    REASON_UNCHANGED,
    Action,
    FieldChange,
    Observed,
    Plan,
    Step,
    field_name,
)

SYMBOLS = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.REPLACE: "-/+",
    Action.DELETE: "-",
    Action.UNCHANGED: "=",
}
_COLORS = {
    Action.CREATE: "32",
    Action.UPDATE: "33",
    Action.REPLACE: "35",
    Action.DELETE: "31",
    Action.UNCHANGED: "2",
}
_CHANGE_COLORS = {"+": "32", "~": "33", "-": "31"}
_SUMMARY = (
    (Action.CREATE, "to create"),
    (Action.UPDATE, "to update"),
    (Action.REPLACE, "to replace"),
    (Action.DELETE, "to delete"),
    (Action.UNCHANGED, "unchanged"),
)
MAX_VALUE = 80


def plan_to_text(plan: Plan, *, color: bool = False, header: str | None = None) -> str:
    """The plan as Terraform-like text: one aligned line per resource, changes, summary."""
    lines = [header, ""] if header else []
    kind_width = max((len(s.kind) for s in plan.steps), default=0)
    name_width = max((len(s.shown_name) for s in plan.steps), default=0)
    for step in plan.steps:
        head = _paint(
            f"{SYMBOLS[step.action]} {step.action.value}".ljust(11), _COLORS[step.action], color
        )
        where = f"({step.manifest})" if step.manifest else ""
        reason = _shown_reason(step)
        cells = [f"{step.kind:<{kind_width}} {step.shown_name:<{name_width}}", where, reason]
        lines.append(f"  {head}  " + "  ".join(c for c in cells if c).rstrip())
        for change in step.changes:
            sign = _change_sign(change)
            lines.append(
                f"      {_paint(sign, _CHANGE_COLORS[sign], color)} {_change_text(change)}"
            )
    if plan.steps:
        lines.append("")
    lines.append(summary_line(plan))
    note = orphan_note(plan)
    if note:
        lines.append(note)
    return "\n".join(lines) + "\n"


def summary_line(plan: Plan) -> str:
    """`Plan: 1 to create, ... 2 unchanged.`, or `No changes. N unchanged.`."""
    counts = plan.counts()
    if not plan.has_changes:
        return f"No changes. {counts[Action.UNCHANGED]} unchanged."
    return "Plan: " + ", ".join(f"{counts[a]} {label}" for a, label in _SUMMARY) + "."


def orphan_note(plan: Plan) -> str:
    """A note on the managed resources without a manifest that the plan leaves alone."""
    if not plan.orphans:
        return ""
    names = ", ".join(f"{o.kind} {o.name or o.resource_name}" for o in plan.orphans)
    one = len(plan.orphans) == 1
    what = "1 managed resource has" if one else f"{len(plan.orphans)} managed resources have"
    why = f"use --prune to delete {'it' if one else 'them'}"
    if plan.unpruned:
        why = f"not deleted: {plan.unpruned}"
    return f"Note: {what} no manifest ({why}): {names}"


def describe_step(step: Step) -> str:
    """Short human text for a step: `update service api: replicas, image`."""
    if step.action is Action.UNCHANGED:
        return f"{step.kind} {step.shown_name} unchanged"
    if is_finishing(step):
        return f"finish or undo {step.kind} {step.shown_name} ({step.reason})"
    text = f"{step.action.value} {step.kind} {step.shown_name}"
    fields = list(
        dict.fromkeys(field_name(c.path) for c in step.changes if c.path != "config_hash")
    )
    detail = ", ".join(fields) if fields else _shown_reason(step)
    return f"{text}: {detail}" if detail else text


def is_finishing(step: Step) -> bool:
    """Whether the step finishes (or undoes) an unconfirmed deployment of the same config."""
    unfinished = step.observed.unfinished if step.observed else None
    return step.action is Action.UPDATE and bool(unfinished) and not step.changes


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan as a JSON-safe dict (for `--json` and the action's outputs)."""
    return {
        "environment": plan.environment,
        "summary": {action.value: n for action, n in plan.counts().items()},
        "has_changes": plan.has_changes,
        "steps": [_step_dict(step) for step in plan.steps],
        "orphans": [_observed_dict(o) for o in plan.orphans],
        "unpruned": plan.unpruned or None,  # why prune left the orphans alone
    }


def plan_to_markdown(plan: Plan) -> str:
    """The plan as a markdown table with a summary line, for PR comments and job summaries."""
    lines = []
    if plan.steps:
        lines += ["| Action | Kind | Name | Changes |", "| --- | --- | --- | --- |"]
        for step in plan.steps:
            details = [f"`{c.path}`: {_md(_change_text(c, path=False))}" for c in step.changes]
            details = details or [_md(_shown_reason(step))]
            action = f"{SYMBOLS[step.action]} {step.action.value}"
            cells = [action, step.kind, _md(step.shown_name), "<br>".join(d for d in details if d)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(f"**{summary_line(plan)}**")
    note = orphan_note(plan)
    if note:
        lines += ["", _md(note)]
    return "\n".join(lines) + "\n"


def format_value(value: Any, limit: int = MAX_VALUE) -> str:
    """A value as compact JSON, truncated to about `limit` characters with an ellipsis."""
    text = json.dumps(_plain(value), ensure_ascii=False, sort_keys=True, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shown_reason(step: Step) -> str:
    """The reason worth printing: none for creates and no-ops, none when the diff says it all."""
    if step.action is Action.UNCHANGED:
        return "" if step.reason == REASON_UNCHANGED else step.reason
    if step.action is Action.CREATE or step.reason == REASON_CONFIG_CHANGED:
        return ""
    return step.reason


def _change_sign(change: FieldChange) -> str:
    if change.old is None:
        return "+"
    return "-" if change.new is None else "~"


def _change_text(change: FieldChange, *, path: bool = True) -> str:
    sign = _change_sign(change)
    if sign == "+":
        value = format_value(change.new)
    elif sign == "-":
        value = format_value(change.old)
    else:
        value = f"{format_value(change.old)} -> {format_value(change.new)}"
    return f"{change.path}: {value}" if path else value


def _paint(text: str, code: str, color: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if color else text


def _md(text: str) -> str:
    """Text safe inside a markdown table cell: no HTML, no cell breaks."""
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")


def _plain(value: Any) -> Any:
    """A JSON-safe copy of a spec value."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)


def _step_dict(step: Step) -> dict[str, Any]:
    on_host = {"host": step.host} if step.host else {}  # a fleet's named host
    return on_host | {
        "action": step.action.value,
        "kind": step.kind,
        "name": step.name,
        "resource_name": step.resource_name,
        "environment": step.environment,
        "manifest": step.manifest,
        "config_hash": step.desired.config_hash if step.desired else None,
        "observed_config_hash": step.observed.config_hash if step.observed else None,
        "reason": step.reason,
        "changes": [
            {"path": c.path, "old": _plain(c.old), "new": _plain(c.new)} for c in step.changes
        ],
    }


def _observed_dict(obs: Observed) -> dict[str, Any]:
    return {
        "kind": obs.kind,
        "name": obs.name or obs.resource_name,
        "resource_name": obs.resource_name,
        "environment": obs.environment,
        "manifest": obs.manifest,
        "config_hash": obs.config_hash,
        "id": obs.id,
    }
