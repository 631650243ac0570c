"""Secrets: rendered as markers, revealed only for drivers, redacted or keyed-hashed elsewhere."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

MARKER_RE = re.compile(r"__BOJSECRET_([A-Za-z_][A-Za-z0-9_]*?)__")
REDACTED = "***"
SECRET_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def marker(name: str) -> str:
    """The placeholder that stands for secret `name` in rendered manifests."""
    return f"__BOJSECRET_{name}__"


def secret_env(name: str, environ: Mapping[str, str]) -> str | None:
    """A secret's value: env var NAME, else BOJDEPLOY_SECRET_NAME."""
    if name in environ:
        return environ[name]
    return environ.get(f"BOJDEPLOY_SECRET_{name}")


def _walk(obj: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, dict):
        return {_walk(k, fn): _walk(v, fn) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_walk(v, fn) for v in obj]
    return obj


def _as_json(obj: Any) -> str | None:
    """`obj` as JSON text when it is plain data (markers survive JSON escaping whole)."""
    try:
        return json.dumps(obj, ensure_ascii=False)
    except (TypeError, ValueError):
        return None


def names_in(obj: Any) -> set[str]:
    """Secret names whose markers appear anywhere in `obj`."""
    text = _as_json(obj)
    if text is not None:
        return set(MARKER_RE.findall(text))
    found: set[str] = set()

    def collect(text: str) -> str:
        found.update(MARKER_RE.findall(text))
        return text

    _walk(obj, collect)
    return found


def has_markers(obj: Any) -> bool:
    """Whether `obj` may hold a secret marker (when it is not plain data, it may)."""
    text = _as_json(obj)
    return text is None or "__BOJSECRET_" in text


def redact(obj: Any) -> Any:
    """Replace every secret marker by '***' (safe for logs, plans, statuses, the database)."""
    return _walk(obj, lambda s: MARKER_RE.sub(REDACTED, s))


def reveal(obj: Any, values: Mapping[str, str]) -> Any:
    """Replace markers by the real values: only for what is sent to a target."""
    return _walk(obj, lambda s: MARKER_RE.sub(lambda m: values.get(m.group(1), ""), s))


def keyed_hash(value: str, key: bytes) -> str:
    """HMAC-SHA256 of a secret value with the installation key (short hex form)."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def hashed(obj: Any, values: Mapping[str, str], key: bytes) -> Any:
    """Replace markers by keyed hashes of their values, so changes are detectable."""

    def sub(m: re.Match[str]) -> str:
        value = values.get(m.group(1))
        return "hmac:missing" if value is None else f"hmac:{keyed_hash(value, key)}"

    text = _as_json(obj)
    if text is not None and "__BOJSECRET_" not in text:
        return obj  # nothing to hash
    return _walk(obj, lambda s: MARKER_RE.sub(sub, s))


class Scrubber:
    """Removes known secret values from any text before it is printed or stored."""

    def __init__(self, values: Iterable[str] = ()):
        self._values: set[str] = set()
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        """Remember more secret values (empty and very short values are ignored)."""
        self._values.update(v for v in values if v and len(v) >= 3)

    def __call__(self, text: str) -> str:
        """`text` with every known secret value replaced by '***'."""
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, REDACTED)
        return text

    def __bool__(self) -> bool:
        return bool(self._values)


def redact_with_refs(obj: Any, path: str = "") -> tuple[Any, dict[str, list[str]]]:
    """Redact markers to '***' and remember which secret names stood where (for rollbacks)."""
    refs: dict[str, list[str]] = {}

    def walk(node: Any, at: str) -> Any:
        if isinstance(node, str):
            names = MARKER_RE.findall(node)
            if names:
                refs[at] = names
            return MARKER_RE.sub(REDACTED, node)
        if isinstance(node, dict):
            return {k: walk(v, f"{at}/{k}") for k, v in node.items()}
        if isinstance(node, list | tuple):
            return [walk(v, f"{at}/{i}") for i, v in enumerate(node)]
        return node

    return walk(obj, path), refs


def restore_markers(obj: Any, refs: Mapping[str, list[str]], path: str = "") -> Any:
    """The inverse of redact_with_refs: put the markers back where the secrets stood."""
    if isinstance(obj, str):
        names = list(refs.get(path, ()))
        if not names:
            return obj
        parts = obj.split(REDACTED)
        out = parts[0]
        for i, part in enumerate(parts[1:]):
            out += (marker(names[i]) if i < len(names) else REDACTED) + part
        return out
    if isinstance(obj, dict):
        return {k: restore_markers(v, refs, f"{path}/{k}") for k, v in obj.items()}
    if isinstance(obj, list):
        return [restore_markers(v, refs, f"{path}/{i}") for i, v in enumerate(obj)]
    return obj
