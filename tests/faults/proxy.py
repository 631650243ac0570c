"""A TCP proxy on 127.0.0.1 that a test can cut (every connection closed, new ones refused)."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

Upstream = tuple[str, int] | str  # (host, port), or the path of a unix socket
CHUNK = 65536


class Proxy:
    """Forwards 127.0.0.1:port to an upstream; cut() drops everything until restore()."""

    def __init__(self, upstream: Upstream, port: int = 0):
        self.upstream = upstream
        self.port = port
        self.accepted = 0  # connections forwarded since start
        self.cuts = 0
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._trigger: tuple[re.Pattern[bytes], int] | None = None

    def cut_on(self, pattern: bytes, nth: int = 1) -> Proxy:
        """Cut, instead of forwarding it, the `nth` client data that matches `pattern` (a request
        line, an XML-RPC method name): the system goes away exactly before that call."""
        with self._lock:
            self._trigger = (re.compile(pattern), nth)
        return self

    @property
    def address(self) -> str:
        """host:port to give a client instead of the upstream's."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> Proxy:
        """Listen (on the same port again after a restore) and serve in a daemon thread."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        """Close every connection and the listener: clients see EOF, then 'connection refused'."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._open = self._open, set()
            self.cuts += 1
        for sock in [*sockets, *([listener] if listener else [])]:
            _close(sock)

    def restore(self) -> None:
        """Accept connections again on the same port."""
        if self._listener is None:
            self.start()

    def close(self) -> None:
        """Stop for good."""
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed by cut()
            try:
                upstream = self._dial()
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:
                    _close(client)
                    _close(upstream)
                    return
                self._open.update((client, upstream))
                self.accepted += 1
            pumps = [2]  # the last of the two directions to end closes both sockets
            for src, dst, request in ((client, upstream, True), (upstream, client, False)):
                pump = (src, dst, pumps, request)
                threading.Thread(target=self._pump, args=pump, daemon=True).start()

    def _dial(self) -> socket.socket:
        if isinstance(self.upstream, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(self.upstream)
            return sock
        return socket.create_connection(self.upstream, timeout=5)

    def _pump(
        self, src: socket.socket, dst: socket.socket, pumps: list[int], request: bool
    ) -> None:
        src.settimeout(None)
        try:
            while data := src.recv(CHUNK):
                if request and self._triggered(data):
                    self.cut()
                    return
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)  # pass a half-close on
        except OSError:
            _close(src)  # and wake the other direction
            _close(dst)
        with self._lock:
            pumps[0] -= 1
            if pumps[0]:
                return
            self._open.difference_update((src, dst))
        _close(src)
        _close(dst)

    def _triggered(self, data: bytes) -> bool:
        """Whether `data` is the one cut_on() waits for."""
        with self._lock:
            if self._trigger is None or not self._trigger[0].search(data):
                return False
            pattern, left = self._trigger
            self._trigger = (pattern, left - 1) if left > 1 else None
            return left == 1


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@contextmanager
def proxied(upstream: Upstream) -> Iterator[Proxy]:
    """A started Proxy, closed afterwards."""
    proxy = Proxy(upstream).start()
    try:
        yield proxy
    finally:
        proxy.close()
