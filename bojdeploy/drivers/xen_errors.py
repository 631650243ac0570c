"""The XenAPI error boundary: every exception of XenAPI and its XML-RPC stack becomes a typed error.

A XenAPI failure or an XML-RPC fault is Xen's answer and becomes `refused` (DriverError unless the
caller says otherwise: ConnectError for the login and while observing, when nothing was changed
yet), with its error code and parameters; anything that means the pool could not be reached or
went away (refused, cut, timed out, an answer that is not XML-RPC) becomes ConnectError. Other
exceptions are bugs and pass through untouched.
"""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.client import HTTPException
from typing import Any
from xml.parsers.expat import ExpatError

import XenAPI

from bojdeploy.errors import BojdeployError, ConnectError, DriverError


@contextmanager
def xen_errors(
    what: str, *, refused: type[BojdeployError] = DriverError, unreachable: str | None = None
) -> Iterator[None]:
    """Translate what the XenAPI SDK raises inside the block; `what` starts every message.

    unreachable: the message for a connection failure (default: '<what>: cannot reach Xen').
    """
    try:
        yield
    except BojdeployError:
        raise
    except Exception as e:
        error = xen_error(what, e, refused=refused, unreachable=unreachable)
        if error is None:
            raise
        raise error from e


def xen_error(
    what: str,
    error: Exception,
    *,
    refused: type[BojdeployError] = DriverError,
    unreachable: str | None = None,
) -> BojdeployError | None:
    """The typed error for an exception of XenAPI or XML-RPC, or None (a bug)."""
    if isinstance(error, XenAPI.Failure):
        return refused(f"{what}: Xen answered {failure_text(error.details)}")
    if isinstance(error, xmlrpc.client.Fault):
        return refused(f"{what}: Xen answered fault {error.faultCode}: {error.faultString}")
    lost = unreachable or f"{what}: cannot reach Xen"
    if isinstance(error, xmlrpc.client.ProtocolError):
        return ConnectError(f"{lost}: HTTP {error.errcode} {error.errmsg}")
    if isinstance(error, (ExpatError, xmlrpc.client.ResponseError)):
        return ConnectError(f"{lost}: the answer is not XML-RPC ({error})")
    if isinstance(error, (OSError, HTTPException)):
        return ConnectError(f"{lost}: {_cause(error)}")
    return None


def failure_text(details: Sequence[Any]) -> str:
    """A XenAPI ErrorDescription as users read it: 'CODE: param, param'."""
    code, *params = [str(d) for d in details] or ["UNKNOWN_ERROR"]
    return f"{code}: {', '.join(params)}" if params else code


def _cause(error: Exception) -> str:
    """The OS's words ('Connection refused', 'timed out'), or the exception's text."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
