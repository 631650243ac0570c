"""The numbered schema migrations (NNN_name[.dialect].sql) and how to read them."""

from __future__ import annotations

import re
from pathlib import Path

MIGRATIONS = Path(__file__).parent
CREATE_SCHEMA_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
    "name VARCHAR(255) NOT NULL, applied_at TIMESTAMP NOT NULL)"
)


def _files(dialect: str) -> dict[int, tuple[str, Path]]:
    """version -> (name, path); NNN_name.<dialect>.sql is one dialect's only."""
    found: dict[int, tuple[str, Path]] = {}
    for path in MIGRATIONS.glob("*.sql"):
        stem, _, variant = path.name.removesuffix(".sql").partition(".")
        if variant and variant != dialect:
            continue
        number, _, name = stem.partition("_")
        found[int(number)] = (name, path)
    return found


def migration_versions(dialect: str) -> list[int]:
    """The versions of a dialect's migrations, in order (their files are not read)."""
    return sorted(_files(dialect))


def load_migrations(dialect: str) -> list[tuple[int, str, str]]:
    """Return (version, name, sql) in order."""
    found = _files(dialect)
    return [
        (version, found[version][0], found[version][1].read_text(encoding="utf-8"))
        for version in sorted(found)
    ]


def split_statements(sql: str) -> list[str]:
    """Split a migration into statements, each ending with ';' at the end of a line."""
    chunks = re.split(r";[ \t]*$", sql, flags=re.MULTILINE)
    code = [
        [ln for ln in c.splitlines() if ln.strip() and not ln.strip().startswith("--")]
        for c in chunks
    ]
    return ["\n".join(lines) for lines in code if lines]
