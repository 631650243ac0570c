"""Repository files: confined to the repository, bounded in size, UTF-8 with line numbers.

The loader reads files only through a `Reader`; `RepoFiles` is the reader of a checkout on
disk (pathlib only), and lists the files where `manifests:` patterns can match."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

from bojdeploy.core.discovery import literal_prefix, max_depth

MAX_FILE_BYTES = 1 << 20  # a manifest, an included file, a config source: 1 MiB


class RepoFileError(ValueError):
    """A repository file that cannot be used, with the line of the problem when there is one."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


def confine(root: Path, rel: str, *, resolved: bool = False) -> Path:
    """The path of repository file `rel`; refuses absolute paths and escapes like '../x'.
    `resolved`: `root` is resolved already."""
    if not isinstance(rel, str) or not rel or Path(rel).is_absolute() or "\0" in rel:
        raise RepoFileError(f"{rel!r}: use a path relative to the repository root")
    base = root if resolved else root.resolve()
    try:
        path = (base / rel).resolve()
    except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop (Python < 3.13)
        raise RepoFileError(f"{rel!r} cannot be resolved: a symlink loop or a bad path") from e
    if not path.is_relative_to(base):
        raise RepoFileError(f"{rel!r} escapes the repository")
    return path


def read_repo_file(root: Path, rel: str, *, resolved: bool = False) -> str:
    """Text of a repository file (UTF-8, at most MAX_FILE_BYTES), confined to the repository."""
    path = confine(root, rel, resolved=resolved)
    if not path.exists():
        raise RepoFileError(f"{rel!r} does not exist in the repository")
    if not path.is_file():
        raise RepoFileError(f"{rel!r} is not a regular file")
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise RepoFileError(f"{rel!r} cannot be read: {e.strerror or e}") from e
    if len(data) > MAX_FILE_BYTES:
        line = data[:MAX_FILE_BYTES].count(b"\n") + 1
        raise RepoFileError(f"{rel!r} is larger than {MAX_FILE_BYTES} bytes", line)
    return decode(data, rel)


def decode(data: bytes, rel: str) -> str:
    """UTF-8 text of a file; an undecodable byte is reported with its line and column."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise RepoFileError(
            f"{rel!r} is not valid UTF-8 (byte 0x{data[e.start]:02x} at line {line}, "
            f"column {column})",
            line,
        ) from e


class Reader(Protocol):
    """Where loading reads repository files from: the only way the loader sees files."""

    def read(self, rel: str) -> str:
        """Text of repository file `rel`; RepoFileError when it cannot be used."""
        ...

    def path_of(self, rel: str) -> str:
        """The repo-relative path `rel` names (folders and links resolved); RepoFileError."""
        ...


@dataclass(frozen=True)
class RepoFiles:
    """The files of a checkout on disk, confined to its root."""

    root: Path

    @cached_property
    def base(self) -> Path:
        """The root, resolved once."""
        return self.root.resolve()

    def read(self, rel: str) -> str:
        """Text of repository file `rel` (UTF-8, at most MAX_FILE_BYTES)."""
        return read_repo_file(self.base, rel, resolved=True)

    def path_of(self, rel: str) -> str:
        """The repo-relative path `rel` names once folders and links are resolved."""
        return confine(self.base, rel, resolved=True).relative_to(self.base).as_posix()

    def candidates(self, patterns: Sequence[str]) -> list[str]:
        """Repo-relative files where `patterns` can match: below each pattern's literal
        folders, no deeper than it reaches; symlinked folders and `.git` are not entered."""
        found: set[str] = set()
        base = self.root
        for pattern in patterns:
            start = base.joinpath(*literal_prefix(pattern))
            depth = max_depth(pattern)
            if start.is_dir():
                found.update(p.relative_to(base).as_posix() for p in _walk(start, depth))
        return sorted(found)


def _walk(folder: Path, depth: int | None) -> Iterator[Path]:
    if depth is not None and depth <= 0:
        return
    try:
        entries = sorted(folder.iterdir())
    except OSError:  # unreadable folders hold no manifests, as with Path.glob
        return
    for entry in entries:
        if entry.is_dir():
            if not entry.is_symlink() and entry.name != ".git":
                yield from _walk(entry, None if depth is None else depth - 1)
        elif entry.is_file():
            yield entry
