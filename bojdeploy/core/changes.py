"""Which manifests a change touches, and why: git diff output in, selection out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bojdeploy.core.discovery import is_manifest_path, normalize

_VERBS = {"A": "added", "M": "modified", "D": "deleted", "T": "type changed"}


@dataclass(frozen=True)
class FileChange:
    """One changed file of a diff: git's status letter and the repo-relative path."""

    status: str
    path: str

    @property
    def verb(self) -> str:
        """The status as a word: added, modified, deleted, type changed or changed."""
        return _VERBS.get(self.status, "changed")


@dataclass(frozen=True)
class Selected:
    """A manifest in scope and the human reason it is."""

    path: str
    reason: str


@dataclass(frozen=True)
class Selection:
    """The manifests a change selects, the manifests it deletes, and how that was decided."""

    selected: tuple[Selected, ...]
    deleted: tuple[str, ...]
    full: bool
    note: str = ""

    def reason_for(self, path: str) -> str | None:
        """Why `path` is selected, or None when it is not."""
        wanted = normalize(path)
        return next((s.reason for s in self.selected if s.path == wanted), None)

    def paths(self) -> list[str]:
        """The selected manifest paths, sorted."""
        return [s.path for s in self.selected]


def parse_name_status(output: str) -> list[FileChange]:
    """Parse `git diff --name-status -z` output; a rename or copy becomes delete + add."""
    if not output:
        return []
    if "\0" not in output:
        raise ValueError("expected NUL-separated `git diff --name-status -z` output")
    fields = output.split("\0")
    if fields[-1] == "":
        fields.pop()
    changes: list[FileChange] = []
    i = 0
    while i < len(fields):
        status = fields[i][:1]
        width = 3 if status in ("R", "C") else 2
        paths = fields[i + 1 : i + width]
        if not status or len(paths) != width - 1:
            raise ValueError(f"truncated `git diff --name-status -z` output near {fields[i]!r}")
        if status == "R":
            changes.append(FileChange("D", normalize(paths[0])))
        changes.append(FileChange("A" if width == 3 else status, normalize(paths[-1])))
        i += width
    return changes


def select_changed(
    manifests: Sequence[str],
    changes: Sequence[FileChange],
    dependencies: Mapping[str, Iterable[str]],
    *,
    patterns: Sequence[str],
    config_file: str = "bojdeploy.yaml",
    range_label: str = "",
) -> Selection:
    """Select the manifests a diff touches: changed, reading a changed file, or via the config."""
    by_path = {normalize(change.path): change for change in changes}
    suffix = f" in {range_label}" if range_label else ""
    reads_of = {normalize(m): {normalize(d) for d in deps} for m, deps in dependencies.items()}
    config_changed = normalize(config_file) in by_path
    selected = []
    for manifest in sorted({normalize(m) for m in manifests}):
        reasons = []
        own = by_path.get(manifest)
        if own is not None and own.status != "D":
            reasons.append(own.verb + suffix)
        reads = sorted(reads_of.get(manifest, set()) & by_path.keys())
        if reads:
            reasons.append("includes " + ", ".join(f"{d} ({by_path[d].verb})" for d in reads))
        if config_changed:
            reasons.append(f"{normalize(config_file)} changed")
        if reasons:
            selected.append(Selected(manifest, "; ".join(reasons)))
    deleted = sorted(
        path
        for path, change in by_path.items()
        if change.status == "D" and is_manifest_path(path, patterns)
    )
    return Selection(tuple(selected), tuple(deleted), full=config_changed)


def select_all(manifests: Sequence[str], reason: str) -> Selection:
    """Select every manifest for one reason, when the change itself cannot be known."""
    selected = tuple(
        Selected(path, f"all manifests: {reason}")
        for path in sorted({normalize(m) for m in manifests})
    )
    return Selection(selected, (), full=True, note=f"{reason}: considering every manifest")
