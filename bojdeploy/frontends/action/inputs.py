"""What the Gitea Action is given: its inputs (INPUT_*), the event, and the run they describe."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bojdeploy.errors import UsageError
from bojdeploy.settings import Settings

# The inputs of action.yml and their defaults (a test keeps the two in step).
INPUT_DEFAULTS = {
    "manifests": "",
    "environment": "",
    "mode": "auto",
    "token": "${{ github.token }}",
    "database-url": "",
    "docker-host": "",
    "xen-url": "",
    "xen-username": "",
    "xen-password": "",
    "deployment-id": "",
    "name": "",
    "prune": "",
    "dry-run": "false",
    "parallel": "4",
    "comment": "false",
    "allow-delete": "false",
}
MODES = ("auto", "plan", "apply", "rollback")
DISPATCH_ACTIONS = ("deploy", "redeploy", "rollback")
PR_EVENTS = ("pull_request", "pull_request_target")


def input_variable(name: str) -> str:
    """The variable act_runner sets for input `name`: uppercased, dashes kept."""
    return "INPUT_" + re.sub(r"[^A-Z0-9-]", "_", name.upper())


def parse_flag(value: str, what: str) -> bool | None:
    """'true'/'false' (any case) as a bool, '' as None; anything else is a usage error."""
    lowered = value.strip().lower()
    if lowered in ("", "true", "false"):
        return None if not lowered else lowered == "true"
    raise UsageError(f"{what}: expected 'true' or 'false', got {value!r}")


@dataclass(frozen=True)
class ActionContext:
    """The run as act_runner describes it: inputs, event, repository, commit, server."""

    inputs: Mapping[str, str]
    environ: Mapping[str, str]
    event_name: str
    event: Mapping[str, Any]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ActionContext:
        """Read the inputs (defaults from action.yml) and the event file."""
        inputs = {
            name: environ.get(input_variable(name), default).strip()
            for name, default in INPUT_DEFAULTS.items()
        }
        return cls(inputs, environ, environ.get("GITHUB_EVENT_NAME", ""), read_event(environ))

    def flag(self, name: str) -> bool | None:
        """A boolean input."""
        return parse_flag(self.inputs[name], f"input {name}")

    def dispatch(self, name: str) -> str:
        """A value a manual run may choose: the dispatch form's input if set, else the input."""
        if self.event_name == "workflow_dispatch":
            form = self.event.get("inputs") or {}
            chosen = {k.replace("-", "_"): str(v).strip() for k, v in form.items()}
            if chosen.get(name.replace("-", "_")):
                return chosen[name.replace("-", "_")]
        return self.inputs.get(name, "")

    @property
    def repository(self) -> str:
        """'owner/name' of the repository the run belongs to."""
        repo = self.event.get("repository") or {}
        return self.environ.get("GITHUB_REPOSITORY") or repo.get("full_name", "")

    @property
    def sha(self) -> str:
        """The commit the run is for (the PR head for pull requests)."""
        return self.environ.get("GITHUB_SHA", "")

    @property
    def workspace(self) -> Path:
        """The checked-out repository."""
        return Path(self.environ.get("GITHUB_WORKSPACE") or ".")

    @property
    def server_url(self) -> str:
        """Gitea's URL: BOJDEPLOY_GITEA_URL, else the URL the runner registered with."""
        url = self.environ.get("BOJDEPLOY_GITEA_URL") or self.environ.get("GITHUB_SERVER_URL")
        return (url or "").rstrip("/")

    def work(self) -> str:
        """What to do: plan, apply, redeploy or rollback (the mode, else the event decides)."""
        mode = self.inputs["mode"] or "auto"
        if mode not in MODES:
            raise UsageError(f"input mode: expected one of {', '.join(MODES)}, got {mode!r}")
        if mode != "auto":
            return mode
        if self.event_name in PR_EVENTS:
            return "plan"
        if self.event_name != "workflow_dispatch":
            return "apply"
        action = self.dispatch("action") or "deploy"
        if action not in DISPATCH_ACTIONS:
            choices = ", ".join(DISPATCH_ACTIONS)
            raise UsageError(f"action: expected one of {choices}, got {action!r}")
        return "apply" if action == "deploy" else action

    def branch(self) -> str | None:
        """The branch whose environment applies: the PR's base, else the pushed branch."""
        if self.event_name in PR_EVENTS:
            base = ((self.event.get("pull_request") or {}).get("base") or {}).get("ref")
            return self.environ.get("GITHUB_BASE_REF") or base or None
        ref = self.environ.get("GITHUB_REF", "")
        return ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None

    def changed_since(self) -> str | None:
        """The push's `before` commit (push events only)."""
        return self.event.get("before") if self.event_name == "push" else None

    def pr_number(self) -> int | None:
        """The pull request's number (pull request events only)."""
        pr = self.event.get("pull_request") or {}
        number = self.event.get("number") or pr.get("number")
        return int(number) if self.event_name in PR_EVENTS and number else None

    def manifest_patterns(self) -> list[str]:
        """The `manifests` input's globs (comma or newline separated)."""
        return [p.strip() for p in re.split(r"[,\n]", self.inputs["manifests"]) if p.strip()]

    def deployment_id(self) -> int | None:
        """The rollback target's id ('12' or '#12')."""
        raw = self.dispatch("deployment-id").removeprefix("#")
        if raw and not raw.isdigit():
            raise UsageError(f"deployment-id: expected a number, got {raw!r}")
        return int(raw) if raw else None

    def parallel(self) -> int:
        """How many independent manifests are applied at once."""
        raw = self.inputs["parallel"] or "4"
        if not raw.isdigit() or not 1 <= int(raw) <= 64:
            raise UsageError(f"input parallel: expected a number from 1 to 64, got {raw!r}")
        return int(raw)

    def prune(self) -> bool | None:
        """The prune input (None: bojdeploy.yaml decides)."""
        return parse_flag(self.dispatch("prune"), "prune")

    def allow_delete(self) -> bool:
        """The allow-delete input: deletes in a protected environment are allowed."""
        return bool(parse_flag(self.dispatch("allow-delete"), "allow-delete"))

    def settings(self) -> Settings:
        """Connection settings: the inputs, else the BOJDEPLOY_* environment."""
        inputs = self.inputs
        return Settings.from_env(
            self.environ,
            database_url=inputs["database-url"] or None,
            docker_host=inputs["docker-host"] or None,
            xen_url=inputs["xen-url"] or None,
            xen_username=inputs["xen-username"] or None,
            xen_password=inputs["xen-password"] or None,
        )


def read_event(environ: Mapping[str, str]) -> dict[str, Any]:
    """The event payload at GITHUB_EVENT_PATH ({} without one)."""
    path = Path(environ.get("GITHUB_EVENT_PATH") or "")
    if not environ.get("GITHUB_EVENT_PATH") or not path.is_file():
        return {}
    try:
        event = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read the event file {path}: {e}") from e
    if not isinstance(event, dict):
        raise UsageError(f"the event file {path} does not hold a JSON object")
    return event


def known_secrets(environ: Mapping[str, str]) -> list[str]:
    """Values known to be secret before any manifest is read: token, passwords, secrets."""
    inputs = {name: environ.get(input_variable(name), "") for name in INPUT_DEFAULTS}
    urls = (inputs["database-url"], environ.get("BOJDEPLOY_DATABASE_URL", ""))
    return [
        inputs["token"],
        inputs["xen-password"],
        environ.get("BOJDEPLOY_GITEA_TOKEN", ""),
        environ.get("BOJDEPLOY_XEN_PASSWORD", ""),
        *(urlsplit(url).password or "" for url in urls),
        *(v for k, v in environ.items() if k.startswith("BOJDEPLOY_SECRET_")),
    ]
