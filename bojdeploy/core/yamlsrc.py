"""YAML documents that remember where each key came from, and pydantic errors mapped to lines."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from bojdeploy.core.yamlguard import (
    CONTROL_RE,
    TooLarge,
    bad_value,
    check_graph,
    control_character,
    key_by_indentation,
)
from bojdeploy.core.yamltree import UNBUILT, Loader, index_tree
from bojdeploy.errors import Problem

__all__ = ["Document", "control_character", "format_path", "key_by_indentation", "validate"]

Path_ = tuple[str | int, ...]


@dataclass
class Document:
    """One YAML document: its data, its first line and the line of every key path."""

    data: Any
    line: int
    lines: dict[Path_, int] = field(default_factory=dict)
    duplicates: list[tuple[Path_, int]] = field(default_factory=list)
    clean: bool = False  # known to hold no value that value_problems refuses

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
    found = control_character(text)
    if found is not None:
        message = f"invalid YAML: control character {found[1]} is not allowed"
        yield Problem(file, found[0], key_by_indentation(text, found[0]), message)
        return
    loader = Loader(text)
    line = 1
    # No anchor (so no alias: every node is visited once) and no merge key (which the
    # constructor flattens into the mapping before it is indexed).
    tree = "&" not in text and "<<" not in text
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            line = node.start_mark.line + 1
            doc = Document(data=UNBUILT, line=line)
            if tree:
                doc.data, doc.clean = index_tree(node, doc.lines, doc.duplicates, loader)
            else:
                check_graph(node)
            if doc.data is UNBUILT:
                doc.data = loader.construct_document(node)
            if not tree:
                _index(node, (), doc)
            doc.lines[()] = doc.line
            yield doc
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = mark.line + 1 if mark else line
        yield Problem(file, at, key_by_indentation(text, at), f"invalid YAML: {e.problem or e}")
    except yaml.YAMLError as e:  # a ReaderError has a position, not a mark
        position = getattr(e, "position", None)
        at = text.count("\n", 0, position) + 1 if isinstance(position, int) else line
        message = f"invalid YAML: {getattr(e, 'reason', None) or e}"
        yield Problem(file, at, key_by_indentation(text, at), message)
    except TooLarge as e:
        yield Problem(file, e.line, key_by_indentation(text, e.line), f"invalid YAML: {e}")
    except (ValueError, OverflowError, RecursionError) as e:  # a value Python cannot build
        yield Problem(file, line, key_by_indentation(text, line), f"invalid YAML: {e}")
    finally:
        loader.dispose()


def value_problems(doc: Document, file: str) -> list[Problem]:
    """Strings with control characters (escaped ones too) and NaN or infinite numbers."""
    if doc.clean:
        return []
    problems: list[Problem] = []
    stack: list[tuple[Path_, Any]] = [((), doc.data)]
    while stack:
        path, value = stack.pop()
        message = bad_value(value)
        if message:
            problems.append(Problem(file, doc.line_of(path), format_path(path), message))
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and CONTROL_RE.search(key):
                    problems.append(
                        Problem(
                            file, doc.line_of(path), format_path(path), "control character in a key"
                        )
                    )
                stack.append(((*path, key), item))
        elif isinstance(value, list):
            stack.extend(((*path, i), item) for i, item in enumerate(value))
    return sorted(problems)


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
            close = difflib.get_close_matches(str(loc[-1]) if loc else "", names, n=1, cutoff=0.6)
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


def _has(data: Any, part: Any) -> bool:
    if isinstance(data, dict):
        return part in data
    return isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)


def _clean_loc(loc: tuple[Any, ...], data: Any) -> Path_:
    """Keep the parts of pydantic's error location that are keys of the user's data; drop
    pydantic's union and validator tags (a user's key may itself contain '[')."""
    out: list[str | int] = []
    current = data
    for part in loc:
        if _has(current, part):
            out.append(part)
            current = current[part]
        elif isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue  # a tag such as 'function-after[...]' or 'list[str]'
        elif isinstance(current, dict | list):
            out.append(part)  # a missing key: 'required key is missing' names it
            current = None
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
            loc = _clean_loc(err["loc"], data)
            msg = _message(dict(err), model, loc)
            if (loc, msg) in seen:
                continue
            seen.add((loc, msg))
            full = (*prefix, *loc)
            problems.append(Problem(file, doc.line_of(full), format_path(full), msg))
        return None, problems
