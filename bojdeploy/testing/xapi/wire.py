"""XML-RPC as xapi speaks it: ocaml-rpc's encoding out, typed parameters in.

Out: strings without a `<string>` tag, int64 as decimal strings, `<boolean>`, `<double>`,
`<dateTime.iso8601>`, arrays and structs, inside a Success/Failure struct.
In: the standard library parses the call; `coerce` applies xapi's parameter types.
"""

from __future__ import annotations

import re
import xmlrpc.client
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from bojdeploy.testing.xapi.faults import XapiError

_INT = re.compile(r"-?[0-9]+")


class MalformedCall(Exception):
    """The request body is not an XML-RPC methodCall with a method name and params."""


def encode(value: Any) -> str:
    """One value as ocaml-rpc writes it: `<value>...</value>`, ints and refs as plain text."""
    if isinstance(value, bool):
        return f"<value><boolean>{int(value)}</boolean></value>"
    if isinstance(value, float):
        return f"<value><double>{value!r}</double></value>"
    if isinstance(value, datetime):
        stamp = value.strftime("%Y%m%dT%H:%M:%SZ")
        return f"<value><dateTime.iso8601>{stamp}</dateTime.iso8601></value>"
    if isinstance(value, list | tuple):
        items = "".join(encode(item) for item in value)
        return f"<value><array><data>{items}</data></array></value>"
    if isinstance(value, dict):
        members = "".join(
            f"<member><name>{escape(str(k))}</name>{encode(v)}</member>" for k, v in value.items()
        )
        return f"<value><struct>{members}</struct></value>"
    return f"<value>{escape('' if value is None else str(value))}</value>"


def _response(envelope: dict[str, Any]) -> bytes:
    body = encode(envelope)
    return f"<methodResponse><params><param>{body}</param></params></methodResponse>".encode()


def success(value: Any) -> bytes:
    """The response body of a call that returned `value` (None is void: "")."""
    return _response({"Status": "Success", "Value": "" if value is None else value})


def failure(error: XapiError) -> bytes:
    """The response body of a call that failed with `error`."""
    return _response({"Status": "Failure", "ErrorDescription": error.description})


def decode_call(body: bytes) -> tuple[str, tuple[Any, ...]]:
    """The method name and parameters of a methodCall body; MalformedCall otherwise."""
    try:
        params, method = xmlrpc.client.loads(body)
    except Exception as e:  # expat and xmlrpc raise several unrelated types
        raise MalformedCall(str(e)) from e
    if not method or b"<params" not in body:
        raise MalformedCall("a methodCall needs a methodName and params")
    return method, params


def coerce(kind: str, name: str, value: Any) -> Any:
    """Parameter `name` converted to `kind` as xapi unmarshals it; FIELD_TYPE_ERROR otherwise.

    int64 arrives as `<int>` or as a decimal string; bool only as `<boolean>`.
    """
    if kind == "int" and not isinstance(value, bool):
        if isinstance(value, int):
            return value
        if isinstance(value, str) and _INT.fullmatch(value):
            return int(value)
    elif kind == "bool" and isinstance(value, bool):
        return value
    elif kind == "float" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    elif kind in ("str", "ref") and isinstance(value, str):
        return value
    elif kind == "map" and isinstance(value, dict):
        if all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return dict(value)
    elif kind in ("set", "refs") and isinstance(value, list):
        if all(isinstance(item, str) for item in value):
            return list(value)
    elif kind == "record" and isinstance(value, dict):
        return value
    raise XapiError("FIELD_TYPE_ERROR", name)


def task_result(value: Any) -> str:
    """The `task.result` string of an Async call: the XML-RPC of its value ("" for void)."""
    return "" if value is None else encode(value)
