"""The XenAPI session of the VM driver: login with a call timeout, shared by parallel steps."""

from __future__ import annotations

import logging
import ssl
import threading
import xmlrpc.client
from contextlib import suppress
from typing import Any

import XenAPI

from bojdeploy.drivers.xen_errors import xen_errors
from bojdeploy.errors import ConnectError

ORIGINATOR = "bojdeploy"
log = logging.getLogger("bojdeploy.xenapi")  # shown with -vv: see bojdeploy/logs.py
CALL_TIMEOUT = 60.0  # seconds for one XenAPI call


class _Transport(xmlrpc.client.Transport):
    """Plain HTTP with a socket timeout: a pool that stops answering fails the call."""

    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout

    def make_connection(self, host: Any) -> Any:
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn


class _SafeTransport(xmlrpc.client.SafeTransport):
    """HTTPS with a socket timeout (and, when asked, no certificate check)."""

    def __init__(self, timeout: float, context: ssl.SSLContext | None):
        super().__init__(context=context)
        self.timeout = timeout

    def make_connection(self, host: Any) -> Any:
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn


class _Session(XenAPI.Session):  # type: ignore[misc]
    """A XenAPI session that parallel steps can share: one request on the wire at a time."""

    def __init__(self, uri: str, ignore_ssl: bool, timeout: float):
        if uri.startswith("https:"):
            context = ssl._create_unverified_context() if ignore_ssl else None
            transport: xmlrpc.client.Transport = _SafeTransport(timeout, context)
        else:
            transport = _Transport(timeout)
        super().__init__(uri, transport=transport)
        self._lock = threading.RLock()

    def xenapi_request(self, methodname: str, params: tuple[Any, ...]) -> Any:
        """The SDK's request (and its re-login on SESSION_INVALID), serialized."""
        log.debug("XenAPI %s", methodname)  # never the parameters: passwords, xenstore data
        with self._lock:
            return super().xenapi_request(methodname, params)


def connect_xen(
    url: str, username: str, password: str, *, verify: bool = True, timeout: float = CALL_TIMEOUT
) -> Any:
    """Log in to the pool at `url`; ConnectError (before anything changed) if that fails.

    verify=False accepts the self-signed certificate a XenServer host has out of the box;
    `timeout` bounds every call (long operations run as tasks, polled with short calls).
    """
    login = f"cannot log in to Xen at {url}"
    try:
        with xen_errors(login, refused=ConnectError, unreachable=f"cannot reach Xen at {url}"):
            session = _Session(url, not verify, timeout)
            session.xenapi.login_with_password(username, password, "1.0", ORIGINATOR)
    except ValueError as e:  # a malformed URL ('http://[::1', an unknown scheme)
        raise ConnectError(f"cannot reach Xen at {url}: not a usable URL ({e})") from e
    return session


def disconnect_xen(session: Any) -> None:
    """Log out; never raises (the run's outcome is already decided)."""
    with suppress(Exception):  # a failed logout must not turn a result into an error
        session.xenapi.session.logout()
