"""The Docker error boundary: every exception of docker, requests and urllib3 becomes a typed error.

Docker refusals (an HTTP answer) become `refused` (DriverError unless the caller says otherwise,
e.g. ConnectError while observing, when nothing was changed yet); anything that means the engine
could not be reached or went away (no socket, connection refused or cut, a timeout, a broken
stream) becomes ConnectError. Other exceptions are bugs and pass through untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from http.client import HTTPException

from bojdeploy.errors import BojdeployError, ConnectError, DriverError

OS_ERROR_TEXT = (r"\[Errno -?\d+\] ([^'\")]+)", r"\w+Error\(-?\d+, '([^']+)'\)")


@contextmanager
def docker_errors(
    what: str, *, refused: type[BojdeployError] = DriverError, unreachable: str | None = None
) -> Iterator[None]:
    """Translate what the docker SDK raises inside the block; `what` starts every message.

    unreachable: the message for a connection failure (default: '<what>: cannot reach Docker').
    """
    try:
        yield
    except BojdeployError:
        raise
    except Exception as e:
        error = docker_error(what, e, refused=refused, unreachable=unreachable)
        if error is None:
            raise
        raise error from e


def docker_error(
    what: str,
    error: Exception,
    *,
    refused: type[BojdeployError] = DriverError,
    unreachable: str | None = None,
) -> BojdeployError | None:
    """The typed error for an exception of the docker SDK or its HTTP stack, or None (a bug)."""
    from docker.errors import APIError, DockerException
    from requests.exceptions import RequestException
    from urllib3.exceptions import HTTPError

    if isinstance(error, APIError):
        return refused(f"{what}: {_answer(error)}")
    if isinstance(error, (DockerException, RequestException, HTTPError, HTTPException, OSError)):
        return ConnectError(
            f"{unreachable or what + ': cannot reach Docker'}: {short_cause(error)}"
        )
    return None


def _answer(error: object) -> str:
    """'Docker answered 409: <its explanation>'."""
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    said = getattr(error, "explanation", None) or str(error)
    return f"Docker answered {status}: {said}" if status else f"Docker answered: {said}"


def short_cause(error: BaseException) -> str:
    """The root of a requests/urllib3 connection error in a few words ('Connection refused')."""
    seen = {id(error)}
    while True:
        inner = getattr(error, "reason", None)
        if not isinstance(inner, BaseException) and error.args:
            inner = error.args[-1]
        if not isinstance(inner, BaseException) or id(inner) in seen:
            break
        seen.add(id(inner))
        error = inner
    text = str(error) or type(error).__name__
    for pattern in OS_ERROR_TEXT:  # the OS's words, when a message only quotes the error
        found = re.search(pattern, text)
        if found:
            return found.group(1).strip()
    return re.sub(r"^HTTP\w*Connection\w*\(.*?\): ", "", text)
