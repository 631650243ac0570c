"""Fleets: the hosts a run needs, each seen through its own targets and its own records.

An environment with `targets.<env>.hosts` is a fleet. Each host gets the manifests that name it
(`metadata.hosts`; the default target those that name none), its own `Targets` and a
`HostStore`: the same store, with every record, read, confirmation and lock scoped to that host.
So the single-target engine (observe, plan, apply, record) runs unchanged once per host.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from bojdeploy.core.fleet import DEFAULT_HOST, hosts_of, record_host
from bojdeploy.core.plan import Plan, Step
from bojdeploy.drivers import Targets
from bojdeploy.engine.apply import Reporter
from bojdeploy.engine.observe import (
    Recorded,
    kinds_to_observe,
    observed_from_records,
    recorded,
    unprunable,
)
from bojdeploy.engine.observe import make_plan_for as make_host_plan
from bojdeploy.engine.prepare import Prepared
from bojdeploy.errors import BojdeployError, ConnectError
from bojdeploy.settings import Settings
from bojdeploy.store.base import Confirmation, Deployment, StateStore


def is_fleet(prepared: Prepared) -> bool:
    """Whether the environment defines named hosts (otherwise nothing here applies)."""
    return bool(prepared.workspace.config.hosts_for(prepared.environment))


class HostStore:
    """A StateStore seen from one host: what it records, reads and locks is that host's."""

    def __init__(self, store: StateStore, host: str):
        self.inner = store
        self.host = record_host(host)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create_deployment(self, **fields: Any) -> int:
        """Record a deployment on this host."""
        return self.inner.create_deployment(**{**fields, "host": self.host})

    def record_unchanged(self, records: Sequence[Mapping[str, Any]], message: str) -> list[int]:
        """Record unchanged deployments on this host, in one transaction."""
        return self.inner.record_unchanged([{**r, "host": self.host} for r in records], message)

    def latest_states(self, environment: str) -> list[Deployment]:
        """The newest successful record of each resource on this host."""
        return [d for d in self.inner.latest_states(environment) if d.host == self.host]

    def successful_deployments(
        self,
        environment: str,
        deployment_type: str,
        name: str,
        limit: int = 10,
        host: str | None = None,
    ) -> list[Deployment]:
        """A resource's completed deployments on this host, newest first."""
        return self.inner.successful_deployments(
            environment, deployment_type, name, limit, host=self.host
        )

    def unfinished_kinds(self, environment: str, host: str | None = None) -> set[str]:
        """The kinds with unfinished work on this host (another host's is not looked at here)."""
        return self.inner.unfinished_kinds(environment, self.host)

    def mark_interrupted(
        self, environment: str, deployment_type: str, name: str, host: str = ""
    ) -> list[int]:
        """Mark this host's pending/running rows of a resource failed."""
        return self.inner.mark_interrupted(environment, deployment_type, name, self.host)

    def confirmations(
        self, environment: str, deployment_ids: Collection[int]
    ) -> dict[int, Confirmation]:
        """Rows made on this host (an id from another host's row is no evidence here)."""
        found = self.inner.confirmations(environment, deployment_ids)
        return {i: c for i, c in found.items() if c.host == self.host}

    def lock(
        self, environment: str, deployment_type: str, name: str, **options: Any
    ) -> AbstractContextManager[None]:
        """The lock of a resource on this host."""
        options["host"] = self.host
        return self.inner.lock(environment, deployment_type, name, **options)


def for_host(prepared: Prepared, host: str) -> Prepared:
    """`prepared` with only the manifests that go to `host`."""
    mine = [m for m in prepared.selected if host in hosts_of(m)]
    known = [m for m in prepared.result.manifests if host in hosts_of(m)]
    result = dataclasses.replace(prepared.result, manifests=known)
    return dataclasses.replace(prepared, selected=mine, result=result)


def may_prune(prepared: Prepared, prune: bool | None) -> bool:
    """Whether this run may delete what its manifests no longer declare."""
    pruning = prepared.workspace.config.prune if prune is None else prune
    return pruning and not unprunable(prepared.workspace)


def recorded_hosts(prepared: Prepared, store: StateStore) -> list[str]:
    """When the whole environment is in scope: the hosts still defined where resources this
    repository recorded remain (the default target included), in the order recorded."""
    if prepared.workspace.explicit is not None or not prepared.selection.full:
        return []
    defined = prepared.workspace.config.hosts_for(prepared.environment)
    repository = prepared.workspace.info.repository
    hosts: dict[str, None] = {}
    for record in store.latest_states(prepared.environment):
        host = record.host or DEFAULT_HOST
        mine = record.git_repository in (None, repository)
        live = not (record.config or {}).get("deleted")
        if mine and live and (host == DEFAULT_HOST or host in defined):
            hosts.setdefault(host)
    return list(hosts)


def hosts_needed(prepared: Prepared, store: StateStore, prune: bool | None) -> list[str]:
    """The hosts a run contacts, in rollout order: those its manifests name, in the order they
    name them; then, when it may prune, the hosts where its records remain (a host dropped from
    a manifest's list is pruned there). Other recorded hosts are planned from their records."""
    hosts: dict[str, None] = {}
    for m in prepared.selected:
        hosts.update(dict.fromkeys(hosts_of(m)))
    if may_prune(prepared, prune):
        hosts.update(dict.fromkeys(recorded_hosts(prepared, store)))
    return list(hosts)


def kinds_on(prepared: Prepared, store: StateStore, host: str, prune: bool | None) -> set[str]:
    """The kinds a run observes on `host`, chosen as for a single target (`kinds_to_observe`)."""
    env = prepared.environment
    scoped = HostStore(store, host)
    records = observed_from_records(scoped, env)  # type: ignore[arg-type]
    unfinished = scoped.unfinished_kinds(env)  # this host's: another's needs no connection here
    return kinds_to_observe(
        for_host(prepared, host), records, may_prune(prepared, prune), unfinished
    )


@contextmanager
def connected(
    prepared: Prepared,
    store: StateStore,
    settings: Settings,
    hosts: Sequence[str],
    prune: bool | None,
) -> Iterator[dict[str, Targets]]:
    """Pre-flight: the targets of every host, each connected for the kinds it needs, before
    anything changes. One unreachable host is a ConnectError naming it (exit 3); all close."""
    made: dict[str, Targets] = {}
    config, env = prepared.workspace.config, prepared.environment
    try:
        for host in hosts:
            targets = made[host] = Targets(env, settings, config, host=record_host(host))
            for kind in sorted(kinds_on(prepared, store, host, prune)):
                try:
                    targets.driver(kind)
                except BojdeployError as e:
                    text = str(e)
                    named = text if f"host {host}" in text else f"host {host}: {text}"
                    raise ConnectError(f"{named}; nothing was changed") from e
        yield made
    finally:
        for targets in made.values():
            targets.close()


def on_host(step: Step, host: str) -> Step:
    """The step as plans show it: `@host` on a named host."""
    return dataclasses.replace(step, host=record_host(host))


def host_reporter(report: Reporter, host: str) -> Reporter:
    """Progress lines of a named host say so: `[container/web@edge-1] ...`."""
    if host == DEFAULT_HOST:
        return report

    def say(resource: str, level: str, message: str) -> None:
        report(f"{resource}@{host}", level, message)

    return say


@dataclass
class HostPlan:
    """One host's plan as pre-flight made it: its manifests, the records it read, the plan."""

    prepared: Prepared
    known: Recorded
    plan: Plan


def fleet_plan(
    prepared: Prepared,
    store: StateStore,
    settings: Settings,
    *,
    offline: bool = False,
    prune: bool | None = None,
    force: bool = False,
    targets: Mapping[str, Targets] | None = None,
    keep: dict[str, HostPlan] | None = None,
) -> Plan:
    """One plan for every host the run needs, each step marked with its host.

    `targets`: every host's connections, when the caller made them (pre-flight); `keep`: filled
    with each live host's plan, for its rollout to start from (no second observation).
    """
    hosts = hosts_needed(prepared, store, prune)

    def plan(host: str, targets: Targets | None) -> tuple[str, Plan]:
        options = {"offline": True} if targets is None else {"targets": targets}
        scoped = HostStore(store, host)
        mine = for_host(prepared, host)
        known = recorded(scoped, prepared.environment)  # type: ignore[arg-type]
        made = make_host_plan(
            mine, scoped, settings, prune=prune, force=force, known=known, **options
        )
        if keep is not None and targets is not None:
            keep[host] = HostPlan(mine, known, made)
        return host, made

    unvisited = [h for h in recorded_hosts(prepared, store) if h not in hosts]
    if offline:
        return merged(prepared.environment, [plan(host, None) for host in hosts + unvisited])
    from_records = [plan(host, None) for host in unvisited]  # their orphans, named
    if targets is not None:
        live = [plan(host, targets[host]) for host in hosts]
        return merged(prepared.environment, live + from_records)
    with connected(prepared, store, settings, hosts, prune) as made:
        live = [plan(host, made[host]) for host in hosts]
    return merged(prepared.environment, live + from_records)


def merged(environment: str, plans: Sequence[tuple[str, Plan]]) -> Plan:
    """The plans of several hosts as one, each step marked with its host."""
    return Plan(
        environment,
        tuple(on_host(step, host) for host, plan in plans for step in plan.steps),
        tuple(orphan for _, plan in plans for orphan in plan.orphans),
        next((plan.unpruned for _, plan in plans if plan.unpruned), ""),
    )
