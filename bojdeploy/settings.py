"""Connection settings from the environment and the command line."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Settings:
    """Where the database, Docker, Xen and Gitea are, and the environment secrets come from."""

    database_url: str | None = None
    docker_host: str | None = None
    xen_url: str | None = None
    xen_username: str | None = None
    xen_password: str | None = None
    xen_verify: bool = True  # False accepts a self-signed certificate (BOJDEPLOY_XEN_VERIFY=false)
    gitea_url: str | None = None
    gitea_token: str | None = None
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: str | None
    ) -> Settings:
        """Settings from BOJDEPLOY_* variables (and DOCKER_HOST); explicit overrides win."""
        env = dict(os.environ if environ is None else environ)
        values = {
            "database_url": env.get("BOJDEPLOY_DATABASE_URL"),
            "docker_host": env.get("DOCKER_HOST"),
            "xen_url": env.get("BOJDEPLOY_XEN_URL"),
            "xen_username": env.get("BOJDEPLOY_XEN_USERNAME"),
            "xen_password": env.get("BOJDEPLOY_XEN_PASSWORD"),
            "gitea_url": env.get("BOJDEPLOY_GITEA_URL") or env.get("GITHUB_SERVER_URL"),
            "gitea_token": env.get("BOJDEPLOY_GITEA_TOKEN"),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        verify = env.get("BOJDEPLOY_XEN_VERIFY", "true").strip().lower() not in ("false", "0", "no")
        return cls(environ=env, xen_verify=verify, **values)
