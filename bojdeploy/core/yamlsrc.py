"""YAML documents that remember where each key came from, and pydantic errors mapped to lines."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from bojdeploy.errors import Problem

Path_ = tuple[str | int, ...]
# libyaml's parser when PyYAML was built with it: several times faster on every run.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Document:
    """One YAML document: its data, its first line and the line of every key path."""

    data: Any
    line: int
    lines: dict[Path_, int] = field(default_factory=dict)
    duplicates: list[tuple[Path_, int]] = field(default_factory=list)

    def line_of(self, path: Path_) -> int:
        """The line of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return self.line


def format_path(path: Path_) -> str:
    """('spec', 'ports', 1) -> 'spec.ports[1]'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _index(node: yaml.Node, path: Path_, doc: Document) -> None:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                doc.duplicates.append(((*path, key), key_node.start_mark.line + 1))
            seen.add(key)
            doc.lines[(*path, key)] = key_node.start_mark.line + 1
            _index(value_node, (*path, key), doc)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), doc)


def parse_documents(text: str, file: str) -> Iterator[Document | Problem]:
    """Yield each YAML document of `text` with its line index, or a Problem for a syntax error."""
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            data = loader.construct_document(node)
            doc = Document(data=data, line=node.start_mark.line + 1)
            _index(node, (), doc)
            doc.lines[()] = doc.line
            yield doc
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        yield Problem(file, line, "", f"invalid YAML: {e.problem or e}")
    finally:
        loader.dispose()


def _model_at(model: type[BaseModel], loc: Path_) -> type[BaseModel] | None:
    """The pydantic model that owns the key at `loc` (for 'did you mean' hints)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or not (
            isinstance(current, type) and issubclass(current, BaseModel)
        ):
            if isinstance(part, int):
                continue
            return None
        info = current.model_fields.get(str(part))
        if info is None:
            return None
        current = _inner_model(info.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _message(err: dict[str, Any], model: type[BaseModel], loc: Path_) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        owner = _model_at(model, loc)
        hint = ""
        if owner is not None:
            names = [f.alias or n for n, f in owner.model_fields.items()]
            close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
            if close:
                hint = f" (did you mean '{close[0]}'?)"
            else:
                hint = f" (allowed: {', '.join(sorted(names))})"
        return f"unknown key{hint}"
    if kind == "missing":
        return "required key is missing"
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if msg.startswith("Assertion failed, "):
        msg = msg[len("Assertion failed, ") :]
    return msg


def _clean_loc(loc: tuple[Any, ...]) -> Path_:
    """Drop pydantic's union/function tags so the path is the user's key path."""
    out: list[str | int] = []
    for part in loc:
        if isinstance(part, int):
            out.append(part)
        elif isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue
        else:
            out.append(part)
    return tuple(out)


def validate(
    model: type[BaseModel], data: Any, doc: Document, file: str, prefix: Path_ = ()
) -> tuple[BaseModel | None, list[Problem]]:
    """Validate `data` against `model`; each error becomes a Problem with file, line, key path."""
    try:
        return model.model_validate(data), []
    except ValidationError as e:
        problems: list[Problem] = []
        seen: set[tuple[Path_, str]] = set()
        for err in e.errors():
            loc = _clean_loc(err["loc"])
            msg = _message(dict(err), model, loc)
            if (loc, msg) in seen:
                continue
            seen.add((loc, msg))
            full = (*prefix, *loc)
            problems.append(Problem(file, doc.line_of(full), format_path(full), msg))
        return None, problems
