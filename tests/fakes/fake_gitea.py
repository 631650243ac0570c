"""A fake Gitea API on 127.0.0.1 that checks every request against Gitea's swagger spec.

It answers the calls bojdeploy makes (version, commit statuses, issue comments, compare),
records every request, lists each deviation from the spec in `problems` (unknown path or method,
missing or wrong token, body fields missing, mistyped or unknown), and can be told to fail some
paths, to fail only the next request (with a Retry-After header), or to do a request but hold its
answer back (a client that times out then does not know it succeeded).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

API = "/api/v1"
SWAGGER_ENV = "BOJDEPLOY_GITEA_SWAGGER"
Answer = tuple[int, Any]


def default_swagger() -> Path:
    """The spec: $BOJDEPLOY_GITEA_SWAGGER, else Gitea 1.25.4's, kept in tests/fixtures."""
    if os.environ.get(SWAGGER_ENV):
        return Path(os.environ[SWAGGER_ENV])
    return Path(__file__).resolve().parents[1] / "fixtures" / "gitea" / "swagger.v1.25.4.json"


class Swagger:
    """Routes and schemas of a swagger 2.0 document."""

    def __init__(self, path: Path):
        self.doc = json.loads(Path(path).read_text())
        self.routes = sorted(
            ((_template_re(t), t) for t in self.doc["paths"]), key=lambda r: r[1].count("{")
        )

    def route(self, path: str) -> tuple[str, dict[str, str]] | None:
        """The path template matching `path` (fewest parameters first) and its parameters."""
        for regex, template in self.routes:
            match = regex.fullmatch(path)
            if match:
                return template, {k: unquote(v) for k, v in match.groupdict().items()}
        return None

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """Follow `$ref`s to the schema itself."""
        while "$ref" in schema:
            node: Any = self.doc
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            schema = node.get("schema", node)
        return schema

    def check(self, schema: dict[str, Any], value: Any, where: str) -> list[str]:
        """Why `value` does not fit `schema` (required, types, enums, unknown keys)."""
        schema = self.resolve(schema)
        kind = schema.get("type", "object" if "properties" in schema else None)
        if value is None or kind is None:
            return []
        if not _TYPES[kind](value):
            return [f"{where}: expected {kind}, got {type(value).__name__}"]
        if kind == "array":
            return [p for i, v in enumerate(value) for p in self.check(schema["items"], v, where)]
        if kind == "string" and "enum" in schema and value not in schema["enum"]:
            return [f"{where}: {value!r} is not one of {schema['enum']}"]
        if kind != "object":
            return []
        props = schema.get("properties", {})
        out = [f"{where}.{r}: required" for r in schema.get("required", []) if r not in value]
        for key, item in value.items():
            sub = props.get(key, schema.get("additionalProperties"))
            if isinstance(sub, dict):
                out += self.check(sub, item, f"{where}.{key}")
            elif props:
                out.append(f"{where}.{key}: not in the spec")
        return out


_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "file": lambda v: True,
}


def _template_re(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return re.compile(pattern)


@dataclass
class Call:
    """One request as the fake saw it, and what it answered."""

    method: str
    path: str
    template: str | None
    params: dict[str, str]
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    status: int = 0
    reply_headers: dict[str, str] = field(default_factory=dict)
    stall: threading.Event | None = None  # the answer waits for it (the work is done already)


@dataclass
class Fault:
    """What the next request on a route meets: a status (with Retry-After), or a stall."""

    status: int = 0
    retry_after: str | None = None
    stall: threading.Event | None = None


@dataclass
class FakeGitea:
    """The fake server: start() it, point a client at `url`, then read `calls` and `problems`."""

    token: str
    swagger_path: Path = field(default_factory=default_swagger)
    calls: list[Call] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    compare_answers: dict[str, Any] = field(default_factory=dict)  # "base...head" -> Compare
    failures: dict[tuple[str, str], int] = field(default_factory=dict)
    faults: dict[tuple[str, str], list[Fault]] = field(default_factory=dict)  # one per request
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # sha -> statuses
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # index -> comments
    version: str = "1.25.4"  # what GET /version answers (1.26 changed how run pages are addressed)

    def __post_init__(self) -> None:
        self.spec = Swagger(self.swagger_path)
        self.lock = threading.Lock()
        self.next_id = 1
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """The server's base URL (without /api/v1)."""
        assert self.server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeGitea:
        """Serve on a free port of 127.0.0.1 in a background thread."""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.fake = self  # type: ignore[attr-defined]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def fail(self, method: str, template: str, status: int = 500) -> None:
        """Answer `status` to every `method` request on the swagger path `template`."""
        self.failures[(method.upper(), template)] = status

    def fail_next(
        self, method: str, template: str, status: int, *, retry_after: str | None = None
    ) -> None:
        """Answer `status` (with a Retry-After header if given) to the next such request only."""
        self.faults.setdefault((method.upper(), template), []).append(
            Fault(status=status, retry_after=retry_after)
        )

    def stall_next(self, method: str, template: str) -> threading.Event:
        """Do the next such request, but hold its answer back until the event returned is set:
        a client that times out meanwhile does not know its request succeeded."""
        release = threading.Event()
        self.faults.setdefault((method.upper(), template), []).append(Fault(stall=release))
        return release

    def count(self, method: str, template: str) -> int:
        """How many requests reached `method` `template`."""
        with self.lock:
            return sum(1 for c in self.calls if (c.method, c.template) == (method, template))

    def handle(self, call: Call, content_type: str) -> Answer:
        """Validate one request against the spec, then answer it."""
        with self.lock:
            self.calls.append(call)
            status, found = self._validate(call, content_type)
            if found:
                self.problems += found
                call.status = status
                return status, {"message": "; ".join(found)}
            status, body = self._answer(call)
            call.status = status
            return status, body

    def _validate(self, call: Call, content_type: str) -> tuple[int, list[str]]:
        """The HTTP status and the problems of a request that breaks the spec (none: valid)."""
        where = f"{call.method} {call.path}"
        if not call.path.startswith(API + "/") or call.template is None:
            return 404, [f"{where}: no such path in the swagger spec"]
        op = self.spec.doc["paths"][call.template].get(call.method.lower())
        if op is None:
            return 405, [f"{where}: {call.method} is not defined for {call.template}"]
        scheme, _, given = call.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "token" or given != self.token:
            return 401, [f"{where}: no 'Authorization: token <token>' header with the right token"]
        return 422, self._check_params(where, op, call, content_type)

    def _check_params(self, where: str, op: dict[str, Any], call: Call, ctype: str) -> list[str]:
        params = op.get("parameters", [])
        out = [
            f"{where}: query parameter {q!r} is not in the spec"
            for q in call.query
            if q not in {p["name"] for p in params if p["in"] == "query"}
        ]
        for p in params:
            value = call.params.get(p["name"], "")
            if p["in"] == "path" and p.get("type") == "integer" and not value.isdigit():
                out.append(f"{where}: path parameter {p['name']} must be an integer")
            if p["in"] == "body":
                out += self._check_body(where, p["schema"], call.body, ctype)
        return out

    def _check_body(self, where: str, schema: dict[str, Any], body: Any, ctype: str) -> list[str]:
        if not ctype.startswith("application/json"):
            return [f"{where}: body must be application/json, not {ctype!r}"]
        if body is None:
            return [f"{where}: missing JSON body"]
        return self.spec.check(schema, body, f"{where}: body")

    def _answer(self, call: Call) -> Answer:
        queued = self.faults.get((call.method, call.template or ""))
        fault = queued.pop(0) if queued else Fault(status=self.failures.get(_key(call), 0))
        if fault.retry_after is not None:
            call.reply_headers["Retry-After"] = fault.retry_after
        if fault.status:
            return fault.status, {"message": "injected failure"}
        call.stall = fault.stall
        handler = _HANDLERS.get((call.method, call.template or ""))
        if handler is None:
            self.problems.append(
                f"{call.method} {call.template}: valid, but the fake cannot answer"
            )
            return 501, {"message": "not implemented by the fake"}
        status, body = handler(self, call)
        op = self.spec.doc["paths"][call.template]  # type: ignore[index]
        schema = op[call.method.lower()]["responses"].get(str(status), {})
        if "$ref" in schema:
            self.problems += self.spec.check(schema, body, f"answer to {call.method} {call.path}")
        return status, body

    def new_id(self) -> int:
        """A fresh object id."""
        self.next_id += 1
        return self.next_id


def _key(call: Call) -> tuple[str, str]:
    return call.method, call.template or ""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _post_status(fake: FakeGitea, call: Call) -> Answer:
    body = call.body
    status = {
        "id": fake.new_id(),
        "status": body["state"],
        "context": body.get("context", "").strip(),
        "description": body.get("description", "").strip(),
        "target_url": body.get("target_url", "").strip(),
        "created_at": _now(),
        "updated_at": _now(),
        "url": fake.url + call.path,
    }
    fake.statuses.setdefault(call.params["sha"], []).append(status)
    return 201, status


def _list_comments(fake: FakeGitea, call: Call) -> Answer:
    return 200, fake.comments.get(int(call.params["index"]), [])


def _post_comment(fake: FakeGitea, call: Call) -> Answer:
    index = int(call.params["index"])
    comment_id = fake.new_id()
    comment = {
        "id": comment_id,
        "body": call.body["body"],
        "html_url": f"{fake.url}/{call.params['owner']}/{call.params['repo']}/pulls/{index}"
        f"#issuecomment-{comment_id}",
        "created_at": _now(),
        "updated_at": _now(),
    }
    fake.comments.setdefault(index, []).append(comment)
    return 201, comment


def _patch_comment(fake: FakeGitea, call: Call) -> Answer:
    wanted = int(call.params["id"])
    for comment in (c for cs in fake.comments.values() for c in cs if c["id"] == wanted):
        comment.update(body=call.body["body"], updated_at=_now())
        return 200, comment
    return 404, None


def _compare(fake: FakeGitea, call: Call) -> Answer:
    answer = fake.compare_answers.get(call.params["basehead"])
    return (200, answer) if answer is not None else (404, None)


def _version(fake: FakeGitea, call: Call) -> Answer:
    return 200, {"version": fake.version}


_HANDLERS: dict[tuple[str, str], Callable[[FakeGitea, Call], Answer]] = {
    ("GET", "/version"): _version,
    ("POST", "/repos/{owner}/{repo}/statuses/{sha}"): _post_status,
    ("GET", "/repos/{owner}/{repo}/issues/{index}/comments"): _list_comments,
    ("POST", "/repos/{owner}/{repo}/issues/{index}/comments"): _post_comment,
    ("PATCH", "/repos/{owner}/{repo}/issues/comments/{id}"): _patch_comment,
    ("GET", "/repos/{owner}/{repo}/compare/{basehead}"): _compare,
}


class _Handler(BaseHTTPRequestHandler):
    """Turns HTTP requests into Calls for the FakeGitea on `self.server.fake`."""

    def _any(self) -> None:
        fake: FakeGitea = self.server.fake  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        route = fake.spec.route(url.path.removeprefix(API)) if url.path.startswith(API) else None
        call = Call(
            method=self.command,
            path=url.path,
            template=route[0] if route else None,
            params=route[1] if route else {},
            query=parse_qs(url.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        status, answer = fake.handle(call, self.headers.get("Content-Type", ""))
        if call.stall is not None:
            call.stall.wait(60)
        data = b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in call.reply_headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the calls are recorded instead."""
