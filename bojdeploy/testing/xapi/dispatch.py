"""One XenAPI call, handled in xapi's order: method lookup, arity, parameter types, session,
then (with injected faults first) the call itself under the store's lock."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

# The handler modules register their calls on import.
from bojdeploy.testing.xapi import (  # noqa: F401
    devices,
    drives,
    events,
    schema,
    sessions,
    tasks,
    vm,
    vm_clone,
    vm_config,
)
from bojdeploy.testing.xapi.faults import Faults, XapiError
from bojdeploy.testing.xapi.registry import Method, resolve
from bojdeploy.testing.xapi.store import Store, new_ref
from bojdeploy.testing.xapi.wire import coerce

LOGIN = "session.login_with_password"
_LOGIN_PARAMS = ("uname", "pwd", "version", "originator")


class Dispatcher:
    """Turns (method name, params) into a value or an XapiError, recording every call."""

    def __init__(self, store: Store, faults: Faults) -> None:
        self.store = store
        self.faults = faults
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._calls_lock = threading.Lock()
        self.in_flight = 0  # calls being handled now (a slowed one outlives a killed client)

    def call(self, name: str, params: tuple[Any, ...]) -> Any:
        """Handle one call; `params` include the session ref first, except for login."""
        with self._calls_lock:
            self.calls.append((name, params if name == LOGIN else params[1:]))
            self.in_flight += 1
        try:
            return self._call(name, params)
        finally:
            with self._calls_lock:
                self.in_flight -= 1

    def _call(self, name: str, params: tuple[Any, ...]) -> Any:
        if name == LOGIN:
            return self._login(params)
        inner = name.removeprefix("Async.")
        method = resolve(inner)
        if method is None or (inner != name and not method.asyncable):
            raise XapiError("MESSAGE_METHOD_UNKNOWN", name)
        expected = len(method.params) + 1
        if len(params) != expected:
            raise XapiError("MESSAGE_PARAMETER_COUNT_MISMATCH", name, expected, len(params))
        args = [
            coerce("ref" if kind in schema.FIELDS else kind, pname, value)
            for (pname, kind), value in zip(method.params, params[1:], strict=True)
        ]
        with self.store.lock:
            session = self.store.check_session(params[0])
        held = args[0] if inner in vm.EXCLUSIVE_OPS else None

        def run(holder: str) -> Any:
            body = lambda: self._invoke(method, session, args)  # noqa: E731
            return self._execute(inner, body, (held, holder) if held else None)

        return tasks.launch(self.store, inner, run) if inner != name else run(new_ref())

    def _login(self, params: tuple[Any, ...]) -> str:
        if not 2 <= len(params) <= len(_LOGIN_PARAMS):
            raise XapiError("MESSAGE_PARAMETER_COUNT_MISMATCH", LOGIN, 4, len(params))
        uname, pwd, *_ = [coerce("str", n, v) for n, v in zip(_LOGIN_PARAMS, params, strict=False)]
        result: str = self._execute(LOGIN, lambda: self.store.login(uname, pwd))
        return result

    def _invoke(self, method: Method, session: str, args: list[Any]) -> Any:
        for (_, kind), value in zip(method.params, args, strict=True):
            if kind in schema.FIELDS:
                self.store.record(kind, value)
        leading = (session,) if method.wants_session else ()
        return method.handler(self.store, *leading, *args)

    def _execute(
        self, name: str, body: Callable[[], Any], held: tuple[str, str] | None = None
    ) -> Any:
        """Apply injected delay and failure, then run `body` under the lock on fresh state.

        `held` is (VM ref, task ref) for a call that holds the VM while it runs (delay included).
        """
        if held is None:
            return self._run(name, body)
        with self.store.lock:
            vm.hold(self.store, held[0], vm.EXCLUSIVE_OPS[name], held[1])
        try:
            return self._run(name, body)
        finally:
            with self.store.lock:
                vm.release(self.store, *held)

    def _run(self, name: str, body: Callable[[], Any]) -> Any:
        failure, delay = self.faults.take(name)
        if delay:
            time.sleep(delay)
        if failure:
            raise failure
        with self.store.lock:
            vm.tick(self.store)
            try:
                return copy.deepcopy(body())
            except XapiError:
                raise
            except Exception as e:  # a simulator bug surfaces as xapi's catch-all
                raise XapiError("INTERNAL_ERROR", repr(e)) from e
