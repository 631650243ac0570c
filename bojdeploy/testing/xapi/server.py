"""The XML-RPC endpoint (POST / and /RPC2) and `XapiSimulator`, the object tests drive."""

from __future__ import annotations

import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from bojdeploy.testing.xapi import tasks, wire
from bojdeploy.testing.xapi.dispatch import Dispatcher
from bojdeploy.testing.xapi.faults import Faults, XapiError
from bojdeploy.testing.xapi.seed import seed
from bojdeploy.testing.xapi.store import Store

# Calls that change nothing: getters, sessions, task polling and free-memory queries.
_READ_ONLY = re.compile(r"[A-Za-z_]+\.get_\w+|session\.\w+|host\.compute_free_memory")
_PATHS = ("/", "/RPC2")
_ERROR_PAGE = (
    b"<html><body><h1>HTTP 500 internal server error</h1>An unexpected error occurred; please"
    b" wait a while and try again. If the problem persists, please contact your support"
    b" representative.</body></html>"
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], dispatcher: Dispatcher) -> None:
        super().__init__(address, _Handler)
        self.dispatcher = dispatcher

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (killed mid-call) is no error of the server's."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out separately: avoid the 40 ms stall
    server: _Server

    def do_POST(self) -> None:
        """One XML-RPC call: 200 with a Success/Failure struct, 500 when the body is malformed."""
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path not in _PATHS:
            self._reply(404, b"Not found", "text/plain")
            return
        try:
            name, params = wire.decode_call(body)
        except wire.MalformedCall:
            self._reply(500, _ERROR_PAGE, "text/html")
            return
        try:
            payload = wire.success(self.server.dispatcher.call(name, params))
        except XapiError as e:
            payload = wire.failure(e)
        self._reply(200, payload, "text/xml")

    def _reply(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests and the CLI have no use for an access log."""


class XapiSimulator:
    """An XAPI server the unmodified XenAPI SDK talks to, seeded as a one-host XCP-ng pool.

    Without `username`/`password` any credentials log in. Guest metrics with an IP appear
    `ip_delay` seconds after a VM starts. Use `start()`/`stop()` or `with XapiSimulator() as sim`.
    """

    def __init__(
        self, username: str | None = None, password: str | None = None, ip_delay: float = 1.0
    ) -> None:
        self.state = Store(username, password, ip_delay)
        seed(self.state)
        self.faults = Faults()
        self._dispatcher = Dispatcher(self.state, self.faults)
        self._server: _Server | None = None
        self.url = ""

    @property
    def calls(self) -> list[tuple[str, tuple[Any, ...]]]:
        """Every call received, in order: (method, params without the session ref)."""
        return self._dispatcher.calls

    def mutating_calls(self) -> list[tuple[str, tuple[Any, ...]]]:
        """The received calls that may change state (not getters, session or task polling)."""
        return [call for call in self.calls if not _READ_ONLY.fullmatch(call[0])]

    def templates(self) -> list[str]:
        """The refs of all VM templates."""
        with self.state.lock:
            return self.state.find("VM", is_a_template=True)

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 picks a free port) in a background thread; return the URL."""
        self._server = _Server((host, port), self._dispatcher)
        self.url = f"http://{host}:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self.url

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> XapiSimulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def fail_next(self, method: str, error_code: str, *params: object, count: int = 1) -> None:
        """Make the next `count` calls of `method` fail with [error_code, *params].

        `method` is the synchronous name: for `Async.VM.start` give `VM.start`, and the task
        fails instead of the call.
        """
        self.faults.fail_next(method, error_code, *params, count=count)

    def slow(self, method: str, seconds: float) -> None:
        """Delay every call of `method` by `seconds` (an Async task stays pending that long)."""
        self.faults.slow(method, seconds)

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until no call is being handled and no task is pending (e.g. a killed client's)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.state.lock:
                running = len(tasks.pending(self.state)) + self._dispatcher.in_flight
            if not running:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{running} call(s) or task(s) still running after {timeout:g}s")
            time.sleep(0.02)

    def expire_sessions(self) -> None:
        """Invalidate all open sessions: the next call gets SESSION_INVALID (the SDK re-logs in)."""
        with self.state.lock:
            self.state.sessions.clear()
