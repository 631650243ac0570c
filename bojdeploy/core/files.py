"""Repository files: confined to the repository, bounded in size, UTF-8 with line numbers.

The loader reads files only through a `Reader`; `RepoFiles` is the reader of a checkout on
disk, and lists the files where `manifests:` patterns can match."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Protocol

from bojdeploy.core.discovery import literal_prefix, max_depth

MAX_FILE_BYTES = 1 << 20  # a manifest, an included file, a config source: 1 MiB
_MISSING = (errno.ENOENT, errno.ENOTDIR)


class RepoFileError(ValueError):
    """A repository file that cannot be used, with the line of the problem when there is one."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


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
    # folder as named -> its real path: the files of a folder resolve it once
    _folders: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    @cached_property
    def base(self) -> str:
        """The root, resolved once."""
        return os.path.realpath(self.root)

    def read(self, rel: str) -> str:
        """Text of repository file `rel` (UTF-8, at most MAX_FILE_BYTES)."""
        path, info = self._confined(rel)
        if info is None:
            raise RepoFileError(f"{rel!r} does not exist in the repository")
        if not stat.S_ISREG(info.st_mode):  # a folder, a FIFO (which would block), a device
            raise RepoFileError(f"{rel!r} is not a regular file")
        try:
            data = _read_at_most(path, info.st_size, MAX_FILE_BYTES + 1)
        except OSError as e:
            raise RepoFileError(f"{rel!r} cannot be read: {e.strerror or e}") from e
        if len(data) > MAX_FILE_BYTES:
            line = data[:MAX_FILE_BYTES].count(b"\n") + 1
            raise RepoFileError(f"{rel!r} is larger than {MAX_FILE_BYTES} bytes", line)
        return decode(data, rel)

    def path_of(self, rel: str) -> str:
        """The repo-relative path `rel` names once folders and links are resolved."""
        path, _ = self._confined(rel)
        return "." if path == self.base else path[len(self.base.rstrip("/")) + 1 :]

    def _confined(self, rel: str) -> tuple[str, os.stat_result | None]:
        """The real path of `rel` inside the repository, and what stat says of it (None: it
        does not exist); refuses absolute paths, escapes like '../x' and symlink loops."""
        if not isinstance(rel, str) or not rel or rel.startswith("/") or "\0" in rel:
            raise RepoFileError(f"{rel!r}: use a path relative to the repository root")
        folder, name = os.path.split(rel)
        real = self._folders.get(folder)
        if real is None:
            real = self._folders[folder] = os.path.realpath(os.path.join(self.base, folder))
        path = os.path.join(real, name)
        if name in ("", ".", ".."):
            path = os.path.realpath(path)
        self._inside(rel, path)
        try:
            info: os.stat_result | None = os.lstat(path)
        except OSError as e:
            _refuse_unless_missing(rel, e)
            info = None
        if info is not None and stat.S_ISLNK(info.st_mode):
            path = os.path.realpath(path)
            self._inside(rel, path)
            try:
                info = os.stat(path)
            except OSError as e:
                _refuse_unless_missing(rel, e)
                info = None
        return path, info

    def _inside(self, rel: str, path: str) -> None:
        if path != self.base and not path.startswith(self.base.rstrip("/") + "/"):
            raise RepoFileError(f"{rel!r} escapes the repository")

    def candidates(self, patterns: Sequence[str]) -> list[str]:
        """Repo-relative files where `patterns` can match: below each pattern's literal
        folders, no deeper than it reaches; symlinked folders and `.git` are not entered."""
        found: set[str] = set()
        for pattern in patterns:
            prefix = "/".join(literal_prefix(pattern))
            start = os.path.join(self.root, prefix)
            if os.path.isdir(start):
                found.update(_walk(start, prefix + "/" if prefix else "", max_depth(pattern)))
        return sorted(found)


def _walk(folder: str, rel: str, depth: int | None) -> Iterator[str]:
    """The files below `folder` (named `rel` in the repository), as repo-relative paths."""
    if depth is not None and depth <= 0:
        return
    try:
        with os.scandir(folder) as listing:
            entries = list(listing)
    except OSError:  # unreadable folders hold no manifests, as with Path.glob
        return
    for entry in entries:
        try:
            if entry.is_dir():
                if not entry.is_symlink() and entry.name != ".git":
                    below = None if depth is None else depth - 1
                    yield from _walk(entry.path, f"{rel}{entry.name}/", below)
            elif entry.is_file():
                yield rel + entry.name
        except OSError:  # gone, or not ours to look at: not a manifest
            continue


def _read_at_most(path: str, size: int, limit: int) -> bytes:
    """Up to `limit` bytes of a regular file of about `size` bytes (it may have changed since)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # never blocks, should it be a FIFO now
    try:
        chunks: list[bytes] = []
        total, want = 0, min(size + 1, limit)  # one byte more than `size` shows the end
        while total < limit:
            chunk = os.read(fd, min(want, limit - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            want = 1 << 16
        return b"".join(chunks)
    finally:
        os.close(fd)


def _refuse_unless_missing(rel: str, e: OSError) -> None:
    """RepoFileError for a path that cannot be looked at (one that does not exist can)."""
    if e.errno == errno.ELOOP:
        raise RepoFileError(f"{rel!r} cannot be resolved: a symlink loop or a bad path") from e
    if e.errno not in _MISSING:
        raise RepoFileError(f"{rel!r} cannot be read: {e.strerror or e}") from e
