"""The dashboard's jinja2 templates (shipped in the package) and the filters they use."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from bojdeploy import __version__
from bojdeploy.frontends.dashboard.chart import seconds
from bojdeploy.store.base import Deployment

STATIC = ("dashboard.css", "dashboard.js")


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in one short phrase: 5 s ago, 3 min ago, 2 h ago, 4 d ago."""
    if moment is None:
        return "—"
    gone = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if gone >= size:
            return f"{gone // size} {unit} ago"
    return f"{gone} s ago"


def stamp(moment: datetime | None) -> str:
    """A UTC timestamp to the second, or a dash."""
    return "—" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def took(record: Deployment) -> str:
    """How long a finished deployment took; a dash while it runs."""
    if record.completed_at is None:
        return "—"
    return seconds(max(0.0, (record.completed_at - record.created_at).total_seconds()))


def short(sha: str | None) -> str:
    """A commit's first 8 characters."""
    return (sha or "")[:8] or "—"


@cache
def environment() -> Environment:
    """The template environment (autoescaped; built once)."""
    env = Environment(
        loader=PackageLoader("bojdeploy.frontends.dashboard", "templates"),
        autoescape=select_autoescape(["html", "svg"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(age=age, stamp=stamp, took=took, short=short, seconds=seconds)
    env.globals.update(version=__version__)
    return env


def render(template: str, **context: Any) -> str:
    """One page as HTML."""
    return environment().get_template(template).render(**context)


@cache
def static_file(name: str) -> bytes | None:
    """The bytes of a static file shipped with the dashboard; None for any other name."""
    if name not in STATIC:
        return None
    return (files("bojdeploy.frontends.dashboard") / "static" / name).read_bytes()
