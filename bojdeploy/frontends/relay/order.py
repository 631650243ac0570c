"""Which of the pushes a deploy took it deploys: the newest commit by history, not by arrival.

A push can arrive late (Gitea's redelivery of a push that once got 503): its commit may be older
than one already deployed, or than another push taken by the same deploy. Deploying it would roll
the environment back, so the order is git's: the deploy takes the push whose commit has the
others as ancestors; a push whose commit is an ancestor of the last deployed one is superseded
(its changes are deployed); when histories diverged (a force push) the newest received wins and
the pushes not in its history are replaced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bojdeploy.engine.gitrepo import Mirror
from bojdeploy.frontends.relay.deliveries import Delivery


@dataclass(frozen=True)
class Order:
    """The push to deploy, the ones it covers, and the ones it does not deploy."""

    newest: Delivery | None  # None: every push taken is already deployed
    covered: list[Delivery] = field(default_factory=list)  # in its history: deployed with it
    superseded: list[Delivery] = field(default_factory=list)  # in the history of `since`
    replaced: list[Delivery] = field(default_factory=list)  # on a history it leaves (diverged)


def arrange(mirror: Mirror, taken: Sequence[Delivery], since: str | None) -> Order:
    """Order the pushes `taken` (oldest received first) by the history in `mirror`, which holds
    every one of their commits; `since` is the last commit deployed for their pair."""
    superseded = []
    if since is not None and mirror.has(since):
        superseded = [d for d in taken if mirror.is_ancestor(d.after_sha, since)]
    rest = [d for d in taken if d not in superseded]
    if not rest:
        return Order(None, superseded=superseded)
    tips = [d for d in rest if all(mirror.is_ancestor(o.after_sha, d.after_sha) for o in rest)]
    newest = tips[-1] if tips else rest[-1]  # diverged: the newest received
    others = [d for d in rest if d is not newest]
    covered = [d for d in others if mirror.is_ancestor(d.after_sha, newest.after_sha)]
    replaced = [d for d in others if d not in covered]
    return Order(newest, covered, superseded, replaced)
