"""An HTTP server on 127.0.0.1 that misbehaves on purpose: it answers every request with the same
raw bytes (a refusal, a truncated stream, garbage), closes without answering, or never answers."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

HANG = b""  # accept and read the request, then say nothing until the server stops


def http_answer(status: str, body: bytes, content_type: str = "application/json") -> bytes:
    """A complete HTTP/1.1 answer."""
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"Connection: close\r\n\r\n" + body


def _read_request(conn: socket.socket) -> None:
    """Read one request: its headers and a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


@contextmanager
def canned(answer: bytes | None) -> Iterator[int]:
    """Serve `answer` (None: close at once; HANG: never answer) on a port; yields the port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)
            with contextlib.suppress(OSError):
                _read_request(conn)
                if answer is None:
                    conn.close()
                elif answer:
                    conn.sendall(answer)
                    conn.close()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        # shutdown wakes an accept or recv blocked in the thread so that it ends: closing alone
        # left it serving, and a later test's connections got this server's answer
        for sock in [listener, *held]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        server.join(5)
        for sock in [listener, *held]:
            with contextlib.suppress(OSError):
                sock.close()
