"""What `status` lists beside the recorded resources: what the targets hold that is not ours.

VMs only: a pool's VMs are few and each one another tool made (Ansible, `xe`) is worth seeing. A
Docker host runs many containers bojdeploy never deployed (runners, databases, the registry), so
unlabelled containers and services are not listed; one that holds the name of a recorded
resource shows in that resource's `missing` line instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from bojdeploy.core.plan import Observed
from bojdeploy.drivers import Targets
from bojdeploy.errors import ConnectError

OWNERSHIP = {"vm": "no bojdeploy.managed in other_config"}


def listed_kinds(targets: Targets) -> set[str]:
    """The kinds whose unmanaged resources are listed: VMs when the environment has a pool."""
    return {"vm"} if targets.xen_url else set()


def observe_listed(targets: Targets, kinds: Iterable[str]) -> tuple[list[Observed], dict[str, str]]:
    """One listing of each kind, and why a kind could not be listed (its target unreachable).

    These kinds hold no recorded resource: an unreachable target leaves them unchecked rather than
    failing the status of the rest.
    """
    observed: list[Observed] = []
    unchecked: dict[str, str] = {}
    for kind in sorted(kinds):
        try:
            observed += targets.observe({kind})
        except ConnectError as e:
            unchecked[kind] = f"unmanaged resources not listed: {e}"
    return observed, unchecked


def unmanaged_of(live: Iterable[Observed], kinds: set[str]) -> list[Observed]:
    """The live resources of `kinds` without bojdeploy's ownership, by name."""
    found = [o for o in live if o.kind in kinds and not o.managed]
    return sorted(found, key=lambda o: (o.kind, o.resource_name, o.id or ""))


def unmanaged_detail(obs: Observed) -> str:
    """'Running, uuid ...: no bojdeploy.managed ...; never changed or deleted by bojdeploy'."""
    facts = ", ".join(f for f in (obs.state, f"uuid {obs.id}" if obs.id else "") if f)
    why = OWNERSHIP.get(obs.kind, "no io.bojdeploy.managed label")
    return f"{facts}: {why}; never changed or deleted by bojdeploy"
