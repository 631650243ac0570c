"""Text presentation of recorded deployments and their logs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bojdeploy.store.base import Deployment, LogEntry


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _duration(record: Deployment) -> str:
    if record.completed_at is None or record.created_at is None:
        return "-"
    seconds = (record.completed_at - record.created_at).total_seconds()
    return f"{seconds:.1f}s"


def history_table(rows: Sequence[Deployment]) -> str:
    """Deployments as an aligned table (UTC times)."""
    if not rows:
        return "No deployments recorded."
    header = ("ID", "CREATED (UTC)", "ENV", "KIND", "NAME", "STATUS", "COMMIT", "TOOK", "NOTE")
    table = [header]
    for r in rows:
        note = r.error_message or ""
        if r.rollback_from:
            note = f"rollback of #{r.rollback_from}" + (f"; {note}" if note else "")
        note = note.splitlines()[0][:60] if note else ""
        table.append(
            (
                str(r.id),
                _when(r.created_at),
                r.environment,
                r.deployment_type,
                _at(r.name, r),
                r.status,
                (r.git_commit or "-")[:7],
                _duration(r),
                note,
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table
    )


def log_lines(record: Deployment, entries: Sequence[LogEntry]) -> str:
    """A deployment's header and its step logs, one per line."""
    head = (
        f"deployment #{record.id}: {record.deployment_type} {record.name} "
        f"({record.environment}) {record.status}"
    )
    if record.error_message:
        head += f"\nerror: {record.error_message}"
    lines = [head]
    for e in entries:
        lines.append(f"{_when(e.timestamp)}  {e.level:<5}  {e.message}")
    if not entries:
        lines.append("(no log lines)")
    return "\n".join(lines)


def outcome_lines(outcomes: Sequence[Any]) -> str:
    """The result of an apply: one line per resource and a summary."""
    if not outcomes:
        return "Nothing to apply."
    marks = {"completed": "ok", "unchanged": "= ", "failed": "FAILED", "skipped": "SKIPPED"}
    lines = []
    for o in outcomes:
        ident = f"#{o.deployment_id}" if o.deployment_id else "-"
        name = _at(o.name, o)
        lines.append(f"{marks.get(o.status, o.status):<6} {o.kind} {name} ({ident}): {o.summary}")
    counts = {
        s: sum(1 for o in outcomes if o.status == s)
        for s in ("completed", "unchanged", "failed", "skipped")
    }
    skipped = f", {counts['skipped']} skipped" if counts["skipped"] else ""
    lines.append(
        f"\nApplied: {counts['completed']} changed, {counts['unchanged']} unchanged, "
        f"{counts['failed']} failed{skipped}."
    )
    return "\n".join(lines)


def _at(name: str, item: Any) -> str:
    """`web`, or `web @edge-1` on a named host of a fleet."""
    host = getattr(item, "host", "")
    return f"{name} @{host}" if host else name


def drift_lines(items: Sequence[Any]) -> str:
    """Drift as a table; in-sync resources included, unmanaged ones after them."""
    if not items:
        return "No deployments recorded."
    rows = [("ENV", "KIND", "NAME", "ON TARGET", "STATE", "DETAIL")]
    rows += [
        (i.environment, i.kind, _at(i.name or "-", i), i.resource_name, i.state, i.detail)
        for i in items
    ]
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    out = ["  ".join(v.ljust(widths[c]) for c, v in enumerate(r)).rstrip() for r in rows]
    recorded = [i for i in items if i.deployment_id is not None]
    drifted = sum(1 for i in recorded if i.drifted)
    if not recorded:
        summary = "No deployments recorded"
    elif drifted:
        summary = f"{drifted} of {len(recorded)} drifted"
    else:
        summary = f"All {len(recorded)} in sync"
    unmanaged = sum(1 for i in items if i.state == "unmanaged")
    if unmanaged:
        summary += f"; {unmanaged} unmanaged (not bojdeploy's: never changed or deleted)"
    out.append(f"\n{summary}.")
    return "\n".join(out)
