"""Text presentation of recorded deployments and their logs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

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
                r.name,
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
