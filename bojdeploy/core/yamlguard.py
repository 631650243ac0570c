"""Bounds on YAML input: alias expansion, nesting, huge numbers, control characters, NaN."""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

MAX_NODES = 100_000  # values in one document once aliases are expanded (billion laughs)
MAX_DEPTH = 64  # nesting of mappings and sequences
# What YAML refuses in a file, and what bojdeploy refuses in any value (tab, LF, CR are fine).
CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")


_KEY_LINE = re.compile(r"^(\s*)(?:-\s+)?([A-Za-z0-9_./-]+)\s*:")


def key_by_indentation(text: str, line: int) -> str:
    """The key path of `line` from indentation alone (for text that is not valid YAML)."""
    lines = text.split("\n")
    if not 0 < line <= len(lines) or not (m := _KEY_LINE.match(lines[line - 1])):
        return ""
    path, indent = [m.group(2)], len(m.group(1))
    for prior in reversed(lines[: line - 1]):
        if prior.startswith("---"):
            break
        outer = _KEY_LINE.match(prior)
        if outer and len(outer.group(1)) < indent and prior.rstrip().endswith(":"):
            path.insert(0, outer.group(2))
            indent = len(outer.group(1))
    return ".".join(path)


def control_character(text: str) -> tuple[int, str] | None:
    """The line and name of the first control character in `text` (YAML refuses them)."""
    match = CONTROL_RE.search(text)
    if match is None:
        return None
    return text.count("\n", 0, match.start()) + 1, f"U+{ord(match.group()):04X}"


class TooLarge(Exception):
    """Input past a bound, with the line where it was found."""

    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


def check_graph(root: yaml.Node) -> None:
    """Refuse recursive aliases, deep nesting and alias expansion past MAX_NODES, in O(nodes)."""
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            depths[key] = 1 + max((depths[id(c)] for c in children), default=0)
            line = node.start_mark.line + 1
            if sizes[key] > MAX_NODES:
                raise TooLarge(f"more than {MAX_NODES} values once aliases are expanded", line)
            if depths[key] > MAX_DEPTH:
                raise TooLarge(f"nested deeper than {MAX_DEPTH} levels", line)
            continue
        if key in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            check_digits(node)
        on_path.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in on_path:
                raise TooLarge(
                    "recursive alias (a value that contains itself)", child.start_mark.line + 1
                )
            if id(child) not in sizes:
                stack.append((child, False))


def check_digits(node: yaml.ScalarNode) -> None:
    """Refuse an integer too long to be a setting (Python would spend long converting it)."""
    if len(node.value) > 100 and node.tag.endswith(":int"):
        raise TooLarge("a number with more than 100 digits", node.start_mark.line + 1)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def bad_value(value: Any) -> str | None:
    """Why a parsed value is refused (a control character, NaN, infinity), or None."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, str) and (match := CONTROL_RE.search(value)):
        return f"control character U+{ord(match.group()):04X} is not allowed"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not accepted: use a finite number"
    return None
