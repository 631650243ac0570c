"""Sessions and the host calls clients make right after login."""

from __future__ import annotations

from bojdeploy.testing.xapi.faults import XapiError
from bojdeploy.testing.xapi.registry import api
from bojdeploy.testing.xapi.store import Store
from bojdeploy.testing.xapi.vm import free_memory


@api("session.logout", asyncable=False, wants_session=True)
def logout(store: Store, session: str) -> None:
    """Close the calling session."""
    del store.sessions[session]


@api("session.get_this_host", "self:str", asyncable=False)
def get_this_host(store: Store, session: str) -> str:
    """The host session `self` is connected to: the only host."""
    if session not in store.sessions:
        raise XapiError("HANDLE_INVALID", "session", session)
    return store.only("host")


@api("host.compute_free_memory", "host:host")
def compute_free_memory(store: Store, host: str) -> int:
    """Bytes free for new VMs on the host."""
    return free_memory(store)
