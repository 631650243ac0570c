"""The simulator's object database: records by class and ref, sessions, and one lock."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from bojdeploy.testing.xapi import schema
from bojdeploy.testing.xapi.eventlog import EventLog
from bojdeploy.testing.xapi.faults import XapiError


def new_ref() -> str:
    """A fresh opaque reference, unrelated to any object's uuid field."""
    return f"OpaqueRef:{uuid.uuid4()}"


class Store:
    """Every simulated object, the open sessions and the simulator's settings.

    Records are live dicts; hold `lock` when a test changes them while the server runs.
    """

    def __init__(
        self, username: str | None = None, password: str | None = None, ip_delay: float = 1.0
    ) -> None:
        self.lock = threading.RLock()
        self.username = username
        self.password = password
        self.ip_delay = ip_delay
        self.objects: dict[str, dict[str, dict[str, Any]]] = {cls: {} for cls in schema.FIELDS}
        self.sessions: dict[str, str] = {}
        # VM ref -> time.monotonic() at which its guest agent reports an IP
        self.guest_due: dict[str, float] = {}
        self.next_domid = 1
        # VIF MAC -> the address the simulated guest "got" by DHCP (kept across reboots)
        self.leases: dict[str, str] = {}
        self.events = EventLog()

    def create(self, cls: str, **values: Any) -> str:
        """Add a record of class `cls` (defaults overridden by `values`) and return its ref."""
        ref = new_ref()
        self.objects[cls][ref] = schema.blank(cls, **values)
        return ref

    def record(self, cls: str, ref: str) -> dict[str, Any]:
        """The live record of `ref`; HANDLE_INVALID when it is not a `cls`."""
        try:
            return self.objects[cls][ref]
        except KeyError:
            raise XapiError("HANDLE_INVALID", cls, ref) from None

    def exists(self, cls: str, ref: str) -> bool:
        """Whether `ref` names a live object of class `cls`."""
        return ref in self.objects[cls]

    def delete(self, cls: str, ref: str) -> None:
        """Remove an object; HANDLE_INVALID when it is not there."""
        self.record(cls, ref)
        del self.objects[cls][ref]

    def find(self, cls: str, **match: Any) -> list[str]:
        """The refs of `cls` objects whose fields equal every value in `match`."""
        return [
            ref
            for ref, record in self.objects[cls].items()
            if all(record[key] == value for key, value in match.items())
        ]

    def by_uuid(self, cls: str, uuid_: str) -> str:
        """The ref of the `cls` object with this uuid; UUID_INVALID when there is none."""
        for ref in self.find(cls, uuid=uuid_):
            return ref
        raise XapiError("UUID_INVALID", cls, uuid_)

    def only(self, cls: str) -> str:
        """The ref of the single object of `cls` (the pool, the host)."""
        (ref,) = self.objects[cls]
        return ref

    def link(self, cls: str, ref: str, field: str, child: str) -> None:
        """Append `child` to the ref set `field` of an object (VM.VIFs, SR.VDIs...)."""
        self.record(cls, ref)[field].append(child)

    def unlink(self, cls: str, ref: str, field: str, child: str) -> None:
        """Drop `child` from the ref set `field` of an object, if both are still there."""
        children = self.objects[cls].get(ref, {}).get(field, [])
        if child in children:
            children.remove(child)

    def login(self, username: str, password: str) -> str:
        """Open a session; SESSION_AUTHENTICATION_FAILED on wrong credentials."""
        if self.username is not None and (username, password) != (self.username, self.password):
            raise XapiError("SESSION_AUTHENTICATION_FAILED", username, "Authentication failure")
        ref = new_ref()
        self.sessions[ref] = username
        return ref

    def check_session(self, ref: object) -> str:
        """The session ref when it is open; SESSION_INVALID otherwise."""
        if not isinstance(ref, str) or ref not in self.sessions:
            raise XapiError("SESSION_INVALID", ref)
        return ref
