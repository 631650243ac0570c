"""A registry that requires a login: 127.0.0.1:PORT in front of the local test registry."""

from __future__ import annotations

import base64
import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DROPPED = ("authorization", "connection", "host", "transfer-encoding")


class AuthRegistry:
    """Relays requests that carry Basic `user:password` to `upstream`; answers others 401."""

    def __init__(self, user: str, password: str, upstream: str = "127.0.0.1:5000") -> None:
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.upstream = upstream
        self.refused = 0  # requests without the right credentials
        self.relayed = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.host = f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> AuthRegistry:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(registry: AuthRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._relay()

        def do_HEAD(self) -> None:
            self._relay()

        def _relay(self) -> None:
            if self.headers.get("Authorization") != registry.expected:
                registry.refused += 1
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="bojdeploy-test"')
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            registry.relayed += 1
            upstream = http.client.HTTPConnection(registry.upstream, timeout=30)
            upstream.putrequest(self.command, self.path)
            for key, value in self.headers.items():  # repeated ones too (Accept)
                if key.lower() not in DROPPED:
                    upstream.putheader(key, value)
            upstream.endheaders()
            reply = upstream.getresponse()
            body = reply.read()
            self.send_response(reply.status)
            for key, value in reply.getheaders():
                if key.lower() not in DROPPED + ("content-length",):
                    self.send_header(key, value)
            length = reply.getheader("Content-Length") if self.command == "HEAD" else None
            self.send_header("Content-Length", length or str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            upstream.close()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
