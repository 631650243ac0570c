"""Field-level differences between two specs, as plans show them."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_/-]*")
_FIELD = re.compile(r"[^.\[]+")


@dataclass(frozen=True)
class FieldChange:
    """One changed field, with its path in the spec (e.g. `spec.env.LOG_LEVEL`)."""

    path: str
    old: Any
    new: Any


def field_name(path: str) -> str:
    """The top-level spec field of a change path: `spec.env.X` -> `env`."""
    rest = path.removeprefix("spec.")
    match = _FIELD.match(rest)
    return match.group(0) if match else rest


def diff_specs(
    old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "spec"
) -> list[FieldChange]:
    """Field-level differences between two JSON-like specs, keys sorted, lists per index."""
    changes: list[FieldChange] = []
    _diff(old, new, prefix, changes)
    return changes


def _diff(old: Any, new: Any, path: str, out: list[FieldChange]) -> None:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(old.keys() | new.keys(), key=str):
            sub = _key_path(path, key)
            if key not in new:
                out.append(FieldChange(sub, old[key], None))
            elif key not in old:
                out.append(FieldChange(sub, None, new[key]))
            else:
                _diff(old[key], new[key], sub, out)
    elif isinstance(old, list | tuple) and isinstance(new, list | tuple):
        for i in range(max(len(old), len(new))):
            sub = f"{path}[{i}]"
            if i >= len(new):
                out.append(FieldChange(sub, old[i], None))
            elif i >= len(old):
                out.append(FieldChange(sub, None, new[i]))
            else:
                _diff(old[i], new[i], sub, out)
    elif not _same(old, new):
        out.append(FieldChange(path, old, new))


def _same(old: Any, new: Any) -> bool:
    """Equal as JSON values: 1, 1.0 and true differ, as they do in the config hash."""
    if isinstance(old, bool | float) or isinstance(new, bool | float):
        return type(old) is type(new) and repr(old) == repr(new)
    return bool(old == new)


def _key_path(prefix: str, key: Any) -> str:
    key = str(key)
    if not _PLAIN_KEY.fullmatch(key):
        return f"{prefix}[{json.dumps(key)}]"
    return f"{prefix}.{key}" if prefix else key
