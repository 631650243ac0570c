"""event.from and event.get_current_id: clients that wait on changes (xapi_event.ml).

A token is the generation the caller has seen. event.from returns the objects of the
subscribed classes created ("add"), changed ("mod") or destroyed ("del") since then, waiting
up to `timeout` seconds for one; it returns an empty list and the same token on timeout.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bojdeploy.testing.xapi import schema
from bojdeploy.testing.xapi.faults import XapiError
from bojdeploy.testing.xapi.registry import api
from bojdeploy.testing.xapi.schema import now
from bojdeploy.testing.xapi.store import Store
from bojdeploy.testing.xapi.vm import tick

_POLL = 0.05  # seconds between looks at the store while waiting (the store lock is released)
_CLASSES = {cls.lower(): cls for cls in schema.FIELDS}


def _token(generation: int) -> str:
    return f"{generation:020d},{0:020d}"


def _parse_token(token: str) -> int:
    if token == "":
        return 0
    try:
        return int(token.split(",")[0])
    except ValueError:
        raise XapiError("EVENT_FROM_TOKEN_PARSE_FAILURE", token) from None


def _subscriptions(classes: list[str]) -> list[tuple[str | None, str | None]]:
    """(class or None for "*", ref or None) per subscription; unknown classes fail."""
    subs: list[tuple[str | None, str | None]] = []
    for sub in classes:
        name, _, ref = sub.partition("/")
        if name == "*":
            subs.append((None, None))
        elif name.lower() in _CLASSES:
            subs.append((_CLASSES[name.lower()], ref or None))
        else:
            raise XapiError("EVENT_SUBSCRIPTION_PARSE_FAILURE", sub)
    return subs


def _wanted(subs: list[tuple[str | None, str | None]], cls: str, ref: str) -> bool:
    return any((c is None or c == cls) and (r is None or r == ref) for c, r in subs)


def _events(store: Store, subs: list[tuple[str | None, str | None]], since: int) -> list[Any]:
    events = []
    for (cls, ref), operation, entry in store.events.since(since):
        if not _wanted(subs, cls, ref):
            continue
        event: dict[str, Any] = {
            "id": max(entry.modified, entry.deleted),
            "timestamp": now(),
            "class": cls.lower(),
            "operation": operation,
            "ref": ref,
        }
        if operation != "del":
            event["snapshot"] = entry.snapshot
        events.append(event)
    return events


@api("event.from", "classes:set", "token:str", "timeout:float", asyncable=False)
def event_from(store: Store, classes: list[str], token: str, timeout: float) -> dict[str, Any]:
    """The changes after `token` to the subscribed classes ("*", "VM", "vm/<ref>"...)."""
    subs = _subscriptions(classes)
    since = _parse_token(token)
    deadline = time.monotonic() + max(timeout, 0.0)
    wait = threading.Condition(store.lock)  # waiting releases the store lock
    while True:
        tick(store)
        store.events.sync(store.objects)
        events = _events(store, subs, since)
        if events or time.monotonic() >= deadline:
            break
        wait.wait(min(_POLL, max(deadline - time.monotonic(), 0.0)))
    counts = {
        cls.lower(): len(store.objects[cls])
        for cls in schema.FIELDS
        if any(c is None or c == cls for c, _ in subs)
    }
    token = _token(max(store.events.generation, since))
    return {"events": events, "valid_ref_counts": counts, "token": token}


@api("event.get_current_id", asyncable=False)
def get_current_id(store: Store) -> int:
    """The newest generation: a token for event.from that skips what already happened."""
    store.events.sync(store.objects)
    return store.events.generation
