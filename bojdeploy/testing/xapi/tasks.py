"""Async calls: a task record that goes from pending to success or failure (taskHelper.ml)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from bojdeploy.testing.xapi.faults import XapiError
from bojdeploy.testing.xapi.registry import api
from bojdeploy.testing.xapi.schema import now
from bojdeploy.testing.xapi.store import Store
from bojdeploy.testing.xapi.wire import task_result


def launch(store: Store, name: str, run: Callable[[str], Any]) -> str:
    """Create a pending task for `Async.<name>`, run `run(task)` in the background, return it."""
    with store.lock:
        ref = store.create(
            "task",
            name_label=f"Async.{name}",
            status="pending",
            created=now(),
            resident_on=store.only("host"),
            allowed_operations=["cancel"],
        )
    threading.Thread(target=_finish, args=(store, ref, run), daemon=True).start()
    return ref


def _finish(store: Store, ref: str, run: Callable[[str], Any]) -> None:
    try:
        outcome: dict[str, Any] = {"status": "success", "result": task_result(run(ref))}
    except XapiError as e:
        outcome = {"status": "failure", "error_info": e.description}
    with store.lock:
        if store.exists("task", ref):
            task = store.record("task", ref)
            task.update(outcome, progress=1.0, finished=now(), allowed_operations=[])


def pending(store: Store) -> list[str]:
    """The refs of the tasks still running."""
    return store.find("task", status="pending")


@api("task.destroy", "self:task", asyncable=False)
def destroy_task(store: Store, ref: str) -> None:
    """Forget a task (clients destroy the tasks of their Async calls)."""
    store.delete("task", ref)
