"""XenAPI failures as xapi raises them, and the faults tests inject into the simulator."""

from __future__ import annotations

import threading
from collections import deque


class XapiError(Exception):
    """A XenAPI failure: an error code and string parameters, as in ErrorDescription."""

    def __init__(self, code: str, *params: object) -> None:
        self.code = code
        self.params = [str(p) for p in params]
        super().__init__(code, *self.params)

    @property
    def description(self) -> list[str]:
        """The ErrorDescription list: the code, then the parameters."""
        return [self.code, *self.params]


class Faults:
    """Failures and delays injected per method name (the synchronous name, e.g. `VM.start`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, deque[XapiError]] = {}
        self._delays: dict[str, float] = {}

    def fail_next(self, method: str, code: str, *params: object, count: int = 1) -> None:
        """Make the next `count` calls of `method` fail with `code` and `params`."""
        with self._lock:
            queue = self._failures.setdefault(method, deque())
            queue.extend(XapiError(code, *params) for _ in range(count))

    def slow(self, method: str, seconds: float) -> None:
        """Delay every call of `method` by `seconds` (0 removes the delay)."""
        with self._lock:
            if seconds > 0:
                self._delays[method] = seconds
            else:
                self._delays.pop(method, None)

    def take(self, method: str) -> tuple[XapiError | None, float]:
        """The failure to raise now (consumed) and the delay to apply for one call of `method`."""
        with self._lock:
            queue = self._failures.get(method)
            failure = queue.popleft() if queue else None
            return failure, self._delays.get(method, 0.0)
