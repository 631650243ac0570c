"""A YAML document without anchors indexed, bounded and built in one walk, and the loader."""

from __future__ import annotations

import functools
from typing import Any

import yaml

from bojdeploy.core.yamlguard import (
    CONTROL_RE,
    MAX_DEPTH,
    MAX_NODES,
    TooLarge,
    bad_value,
    check_digits,
)

Path_ = tuple[str | int, ...]
_TAG = "tag:yaml.org,2002:"
_MAP, _SEQ, _STR = _TAG + "map", _TAG + "seq", _TAG + "str"
_SCALARS = frozenset(_TAG + t for t in ("null", "bool", "int", "float", "timestamp", "binary"))
_CHECKED = frozenset(_TAG + t for t in ("float", "binary"))  # may build a value bad_value refuses
_RESOLVER = yaml.resolver.Resolver()
_MEMO_LENGTH = 64  # plain scalars up to this long have their tag remembered


@functools.lru_cache(maxsize=4096)
def plain_tag(value: str) -> str:
    """The tag yaml's Resolver gives the plain (unquoted) scalar `value`."""
    return _RESOLVER.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-any-return]


class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader (libyaml's parser when PyYAML was built with it: several times faster)
    that remembers the tag of short plain scalars, which manifests repeat (keys, images)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        """What yaml's Resolver says, remembered for short plain scalars."""
        if kind is yaml.ScalarNode and not self.yaml_path_resolvers:
            if not implicit[0]:
                return _STR  # quoted: a string whatever it says
            if len(value) <= _MEMO_LENGTH:
                return plain_tag(value)
        return super().resolve(kind, value, implicit)


UNBUILT = object()  # the walk could not build the data: the constructor does


def index_tree(
    root: yaml.Node, lines: dict[Path_, int], duplicates: list[tuple[Path_, int]], loader: Any
) -> tuple[Any, bool]:
    """_index, check_graph and the constructor in one walk, for a document without anchors
    (so a tree): the same bounds on nesting, values and digits, the same lines and duplicates.
    Returns the data, or UNBUILT when a tag, a key or a duplicate needs the constructor, and
    whether the data is clean: no value is one bad_value refuses (checked only when built)."""
    mapping, sequence, scalar = yaml.MappingNode, yaml.SequenceNode, yaml.ScalarNode
    count, built = 0, True
    top: list[Any] = [None]
    pending: list[tuple[Any, Any, yaml.Node]] = []  # scalars built once the bounds held
    strings: list[str] = []  # every string value and key, searched for control characters
    stack: list[tuple[yaml.Node, Path_, Any, Any]] = [(root, (), top, 0)]
    while stack:
        node, path, parent, slot = stack.pop()
        line = node.start_mark.line + 1
        count += 1
        if len(path) >= MAX_DEPTH:
            raise TooLarge(f"nested deeper than {MAX_DEPTH} levels", line)
        if path not in lines:
            lines[path] = line
        value: Any = None
        tag = node.tag
        if isinstance(node, scalar):  # most nodes: checked first
            if tag == _STR:
                value = node.value
                strings.append(value)
            else:
                check_digits(node)
                if tag in _SCALARS:
                    pending.append((parent, slot, node))
                else:
                    built = False
        elif isinstance(node, mapping):
            built = built and tag == _MAP
            value = {}
            children: list[tuple[yaml.Node, Path_, Any, Any]] = []  # in document order
            for key_node, value_node in node.value:
                key: Any = "?"  # a key that is not a scalar, which the constructor refuses
                if isinstance(key_node, scalar):
                    key = key_node.value
                    at = (*path, key)
                    if key in value:
                        duplicates.append((at, key_node.start_mark.line + 1))
                        built = False
                    value[key] = None  # a placeholder: the order of keys is the document's
                    lines[at] = key_node.start_mark.line + 1
                    count += 1
                    if key_node.tag == _STR:
                        strings.append(key)
                    else:
                        check_digits(key_node)
                        built = False
                    children.append((value_node, at, value, key))
                else:
                    built = False
                    at = (*path, key)
                    children.append((value_node, at, value, key))
                    children.append((key_node, at, None, None))  # its size and nesting
            stack.extend(reversed(children))
        elif isinstance(node, sequence):
            built = built and tag == _SEQ
            value = [None] * len(node.value)
            items = node.value
            for i in range(len(items) - 1, -1, -1):
                stack.append((items[i], (*path, i), value, i))
        if parent is not None:
            parent[slot] = value
        if count > MAX_NODES:
            raise TooLarge(f"more than {MAX_NODES} values once aliases are expanded", line)
    if not built:
        return UNBUILT, False
    clean = CONTROL_RE.search("\n".join(strings)) is None  # LF is allowed: it joins safely
    for parent, slot, node in pending:
        parent[slot] = built_value = loader.yaml_constructors[node.tag](loader, node)
        clean = clean and (node.tag not in _CHECKED or bad_value(built_value) is None)
    return top[0], clean
