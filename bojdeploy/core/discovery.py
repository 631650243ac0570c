"""Which repository files are manifests: one glob matcher for discovery and for deletions.

The `manifests:` patterns of `bojdeploy.yaml` are matched here and nowhere else, against
repository-relative paths: the files of a checkout (discovery) and the paths of a diff (deleted
manifests), so a pattern means the same in both. `*`, `?` and `[...]` match within one path
segment; a `**` segment matches zero or more folders, so `deploy/**` is every file below
`deploy/` and `deploy/**/*.yml` every `.yml` file below it at any depth.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from pathlib import PurePosixPath

YAML_PATTERNS = ("**/*.yml", "**/*.yaml")  # a folder named on the command line
_WILDCARDS = frozenset("*?[")


def normalize(path: str) -> str:
    """A repo-relative path with forward slashes and no leading './' or '/'."""
    return PurePosixPath(path).as_posix().lstrip("/")


def matches(path: str, pattern: str) -> bool:
    """True when repo-relative `path` matches glob `pattern`."""
    return _match(normalize(path).split("/"), normalize(pattern).split("/"))


def is_manifest_path(path: str, patterns: Sequence[str]) -> bool:
    """True when `path` matches one of the glob patterns."""
    return any(matches(path, pattern) for pattern in patterns)


def discover(files: Iterable[str], patterns: Sequence[str]) -> list[str]:
    """The files (repo-relative paths) that match a pattern, normalized and sorted."""
    return sorted({normalize(f) for f in files if is_manifest_path(f, patterns)})


def literal_prefix(pattern: str) -> tuple[str, ...]:
    """The leading folders of a pattern that hold no wildcard: where its matches can be."""
    parts = normalize(pattern).split("/")[:-1]
    out: list[str] = []
    for part in parts:
        if _WILDCARDS & set(part) or part in ("", "."):
            break
        out.append(part)
    return tuple(out)


def max_depth(pattern: str) -> int | None:
    """How many segments below its literal prefix a match can have (None: any, for `**`)."""
    parts = normalize(pattern).split("/")
    if "**" in parts:
        return None
    return len(parts) - len(literal_prefix(pattern))


def _match(parts: Sequence[str], pattern: Sequence[str]) -> bool:
    """Match path segments against glob segments, where a `**` segment spans any depth."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":  # a trailing `**` is what a folder holds, never the folder itself
        if not rest:
            return bool(parts)
        return any(_match(parts[i:], rest) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], head) and _match(parts[1:], rest)
