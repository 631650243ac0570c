"""The XenAPI calls the simulator serves: explicit ones registered with `@api`, generic ones
(`get_record`, `get_<field>`, `set_<field>`, map `add_to_`/`remove_from_`...) made per class."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bojdeploy.testing.xapi import schema
from bojdeploy.testing.xapi.faults import XapiError
from bojdeploy.testing.xapi.filter import compile_where
from bojdeploy.testing.xapi.store import Store


@dataclass(frozen=True)
class Method:
    """A call: its handler, its parameters after the session as (name, kind), its options.

    A kind is a class name (a ref that must exist), or a wire kind of `wire.coerce`.
    The handler gets the store, then the session ref if `wants_session`, then the arguments.
    """

    handler: Callable[..., Any]
    params: tuple[tuple[str, str], ...]
    asyncable: bool = True
    wants_session: bool = False


METHODS: dict[str, Method] = {}


def api(
    name: str, *params: str, asyncable: bool = True, wants_session: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as XenAPI call `name` with "param:kind" parameters."""

    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        pairs = tuple((pname, kind) for pname, _, kind in (p.partition(":") for p in params))
        METHODS[name] = Method(handler, pairs, asyncable, wants_session)
        return handler

    return register


def resolve(name: str) -> Method | None:
    """The call named `name` (without `Async.`), or None when xapi would not know it."""
    if name in METHODS:
        return METHODS[name]
    cls, _, action = name.partition(".")
    fields = schema.FIELDS.get(cls)
    if fields is None:
        return None
    if action in _CLASS_CALLS and (action != "get_by_name_label" or "name_label" in fields):
        handler, params = _CLASS_CALLS[action]
        return Method(functools.partial(handler, cls), params, asyncable=False)
    return _field_call(cls, action, fields)


def _field_call(cls: str, action: str, fields: dict[str, str]) -> Method | None:
    """get_<field>, set_<field> (writable fields), add_to_/remove_from_<field> (writable maps)."""
    writable = schema.WRITABLE.get(cls, frozenset())
    verb, _, field = action.partition("_")
    if verb == "get" and field in fields:
        return Method(functools.partial(_get_field, cls, field), (("self", cls),), False)
    if verb == "set" and field in writable:
        setter_params = (("self", cls), ("value", fields[field]))
        return Method(functools.partial(_set_field, cls, field), setter_params, False)
    for prefix, handler, extra in _MAP_CALLS:
        field = action.removeprefix(prefix)
        if action.startswith(prefix) and field in writable and fields[field] == "map":
            return Method(functools.partial(handler, cls, field), (("self", cls), *extra), False)
    return None


def _get_field(cls: str, field: str, store: Store, ref: str) -> Any:
    return store.record(cls, ref)[field]


def _set_field(cls: str, field: str, store: Store, ref: str, value: Any) -> None:
    store.record(cls, ref)[field] = value


def _add_to_map(cls: str, field: str, store: Store, ref: str, key: str, value: str) -> None:
    mapping = store.record(cls, ref)[field]
    if key in mapping:
        raise XapiError("MAP_DUPLICATE_KEY", cls, field, ref, key)
    mapping[key] = value


def _remove_from_map(cls: str, field: str, store: Store, ref: str, key: str) -> None:
    store.record(cls, ref)[field].pop(key, None)


_MAP_CALLS: tuple[tuple[str, Callable[..., Any], tuple[tuple[str, str], ...]], ...] = (
    ("add_to_", _add_to_map, (("key", "str"), ("value", "str"))),
    ("remove_from_", _remove_from_map, (("key", "str"),)),
)


def _get_record(cls: str, store: Store, ref: str) -> dict[str, Any]:
    return store.record(cls, ref)


def _get_all(cls: str, store: Store) -> list[str]:
    return list(store.objects[cls])


def _get_all_records(cls: str, store: Store) -> dict[str, dict[str, Any]]:
    return dict(store.objects[cls])


def _get_all_records_where(cls: str, store: Store, expr: str) -> dict[str, dict[str, Any]]:
    matches = compile_where(cls, expr)
    return {ref: rec for ref, rec in store.objects[cls].items() if matches(ref, rec)}


def _get_by_uuid(cls: str, store: Store, uuid_: str) -> str:
    return store.by_uuid(cls, uuid_)


def _get_by_name_label(cls: str, store: Store, label: str) -> list[str]:
    return store.find(cls, name_label=label)


_CLASS_CALLS: dict[str, tuple[Callable[..., Any], tuple[tuple[str, str], ...]]] = {
    "get_record": (_get_record, (("self", "ref"),)),
    "get_all": (_get_all, ()),
    "get_all_records": (_get_all_records, ()),
    "get_all_records_where": (_get_all_records_where, (("expr", "str"),)),
    "get_by_uuid": (_get_by_uuid, (("uuid", "str"),)),
    "get_by_name_label": (_get_by_name_label, (("label", "str"),)),
}
