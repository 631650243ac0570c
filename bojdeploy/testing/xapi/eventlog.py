"""What changed in the object store, by generation, for event.from (xapi's Db_cache generations).

Changes are found by comparing the store with the snapshots taken at the previous look, so
several changes to one object between two looks make one event, as xapi's coalesced
event.from results do.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, str]  # (class, ref)


@dataclass
class Entry:
    """One object's history: the generations it was created, last changed and deleted at."""

    created: int
    modified: int
    deleted: int = 0
    snapshot: dict[str, Any] = field(default_factory=dict)


class EventLog:
    """Generations of every object seen; `sync` records what changed since the last look."""

    def __init__(self) -> None:
        self.generation = 0
        self.entries: dict[Key, Entry] = {}

    def sync(self, objects: dict[str, dict[str, dict[str, Any]]]) -> None:
        """Compare the store with the last snapshots; changes get the next generation."""
        live = {(cls, ref): rec for cls, records in objects.items() for ref, rec in records.items()}
        changed = [
            key
            for key, rec in live.items()
            if key not in self.entries
            or self.entries[key].deleted
            or self.entries[key].snapshot != rec
        ]
        gone = [key for key, e in self.entries.items() if not e.deleted and key not in live]
        if not changed and not gone:
            return
        self.generation += 1
        gen = self.generation
        for key in changed:
            entry = self.entries.get(key)
            if entry is None or entry.deleted:
                entry = self.entries[key] = Entry(created=gen, modified=gen)
            entry.modified = gen
            entry.snapshot = copy.deepcopy(live[key])
        for key in gone:
            self.entries[key].deleted = gen

    def since(self, generation: int) -> list[tuple[Key, str, Entry]]:
        """(key, operation, entry) for each object changed after `generation`, oldest first."""
        found = []
        for key, entry in self.entries.items():
            if entry.deleted > generation:
                found.append((key, "del", entry))
            elif entry.created > generation and not entry.deleted:
                found.append((key, "add", entry))
            elif entry.modified > generation and not entry.deleted:
                found.append((key, "mod", entry))
        return sorted(found, key=lambda item: max(item[2].modified, item[2].deleted))
