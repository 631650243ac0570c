"""What loading shares across the files and environments of one run.

Validating a repository loads every manifest once per environment; what does not depend on the
environment is done once: reading a file (and resolving its path), compiling its template, and
parsing a rendered text that comes out the same in several environments (a file without
template syntax always does).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from typing import Any, TypeVar

from bojdeploy.core.files import Reader, RepoFileError
from bojdeploy.core.sandbox import Budget
from bojdeploy.core.template import Templates
from bojdeploy.core.yamlsrc import Document, parse_documents
from bojdeploy.errors import Problem

T = TypeVar("T")
MAX_DOCUMENTS = 1000  # YAML documents in one manifest file


class CachedReader:
    """A Reader that asks `reader` once per path; refusals are remembered too."""

    def __init__(self, reader: Reader):
        self.reader = reader
        self._texts: dict[str, str | RepoFileError] = {}
        self._paths: dict[str, str | RepoFileError] = {}

    def read(self, rel: str) -> str:
        """Text of repository file `rel`; RepoFileError when it cannot be used."""
        return _remembered(self._texts, rel, self.reader.read)

    def path_of(self, rel: str) -> str:
        """The repo-relative path `rel` names; RepoFileError."""
        return _remembered(self._paths, rel, self.reader.path_of)


def _remembered(memo: dict[str, str | RepoFileError], rel: str, ask: Callable[[str], str]) -> str:
    found = memo.get(rel)
    if found is None:
        try:
            found = ask(rel)
        except RepoFileError as e:
            found = e
        memo[rel] = found
    if isinstance(found, RepoFileError):
        raise RepoFileError(str(found), found.line)
    return found


class LoadCache:
    """Reads, templates and parses of one run, with the template budget they all share."""

    def __init__(self, reader: Reader, budget: Budget | None = None):
        self.reader = reader if isinstance(reader, CachedReader) else CachedReader(reader)
        self.budget = budget or Budget()
        self.templates = Templates(self.budget)
        self._parsed: dict[tuple[str, str], list[Document | Problem]] = {}
        self._once: dict[tuple[str, int], tuple[object, Any]] = {}

    def parse(self, rel: str, text: str) -> list[Document | Problem]:
        """The YAML documents of rendered text `text` of file `rel` (each text parsed once), at
        most one past MAX_DOCUMENTS (which the loader refuses)."""
        key = (rel, text)
        docs = self._parsed.get(key)
        if docs is None:
            docs = list(islice(parse_documents(text, rel), MAX_DOCUMENTS + 1))
            self._parsed[key] = docs
        return docs

    def once(self, what: str, of: object, make: Callable[[], T]) -> T:
        """`make()` once per `what` of object `of`: a check of a parsed document, the secrets
        of a validated manifest (`of` is kept, so that its id stays its own)."""
        key = (what, id(of))
        if key not in self._once:
            self._once[key] = (of, make())
        return self._once[key][1]  # type: ignore[no-any-return]
