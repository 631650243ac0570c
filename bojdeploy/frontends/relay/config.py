"""The relay's settings, from the environment; refusals name what is missing in one line."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bojdeploy.errors import UsageError
from bojdeploy.settings import Settings
from bojdeploy.store.base import redact_url

SECRET_VAR = "BOJDEPLOY_WEBHOOK_SECRET"
REPOS_VAR = "BOJDEPLOY_RELAY_REPOS"
URL_VAR = "BOJDEPLOY_RELAY_URL"
API_TOKEN_VAR = "BOJDEPLOY_API_TOKEN"
SECRET_PREFIX = "BOJDEPLOY_SECRET_"  # manifest secrets (core/secrets.py), never file indirections
DRIFT_INTERVAL_VAR = "BOJDEPLOY_DRIFT_INTERVAL"
DRIFT_STATUS_VAR = "BOJDEPLOY_DRIFT_STATUS"
DRIFT_INTERVAL = 300  # seconds
UNITS = {"s": 1, "m": 60, "h": 3600}


def drift_interval(raw: str) -> int | None:
    """Seconds between drift checks from `30s`, `5m`, `1h` or plain seconds; None for `0`/`off`.

    The watch is a procrastinate cron schedule, so the interval must divide a minute, an hour
    or a day evenly."""
    text = raw.strip().lower() or str(DRIFT_INTERVAL)
    if text in ("0", "off"):
        return None
    unit = UNITS.get(text[-1], 1)
    number = text[:-1] if text[-1] in UNITS else text
    seconds = int(number) * unit if number.isdigit() else 0
    if not seconds or not any(
        seconds % step == 0 and span % seconds == 0
        for step, span in ((1, 60), (60, 3600), (3600, 86400))
    ):
        raise UsageError(
            f"{DRIFT_INTERVAL_VAR} must be `off` or an interval that divides a minute, an hour "
            f"or a day evenly (e.g. 30s, 5m, 1h), not {raw!r}"
        )
    return seconds


def drift_cron(seconds: int) -> str:
    """The procrastinate cron expression (seconds in a 6th column) of an interval."""
    if seconds < 60:
        return f"* * * * * */{seconds}"
    if seconds < 3600:
        return f"*/{seconds // 60} * * * *"
    return f"0 */{seconds // 3600} * * *" if seconds < 86400 else "0 0 * * *"


def flag(name: str, raw: str) -> bool:
    """A true/false setting (unset: false)."""
    text = raw.strip().lower()
    if text not in ("", "0", "1", "true", "false", "yes", "no"):
        raise UsageError(f"{name} must be true or false, not {raw!r}")
    return text in ("1", "true", "yes")


def with_files(env: dict[str, str]) -> dict[str, str]:
    """`env` with each BOJDEPLOY_<NAME>_FILE read into BOJDEPLOY_<NAME> (unless that is set), as
    Docker secrets and systemd credentials give them; UsageError naming the variable whose file
    cannot be read (never its value: a mistaken variable may hold a secret itself).

    Manifest secrets (`BOJDEPLOY_SECRET_<NAME>`) are taken literally: a secret may be named
    `..._FILE`, and its value is not a path."""
    for key, path in list(env.items()):
        name = key.removesuffix("_FILE")
        if key.startswith(SECRET_PREFIX) or not key.startswith("BOJDEPLOY_"):
            continue
        if name != key and not env.get(name):
            try:
                env[name] = Path(path).read_text().rstrip("\r\n")
            except (OSError, ValueError) as e:
                why = getattr(e, "strerror", None) or "not a readable file"
                raise UsageError(f"{key}: cannot read the file it names: {why}") from e
    return env


@dataclass(frozen=True)
class RelayConfig:
    """What the relay and its workers need: the database, the secret, Gitea, the allow-list."""

    database_url: str
    secret: bytes = field(repr=False)
    repos: frozenset[str] | None  # None: every correctly signed repository
    public_url: str | None  # how users reach the relay (status links); None: as requested
    settings: Settings = field(repr=False)
    api_token: str | None = field(default=None, repr=False)  # None: the REST API is read-only
    drift_interval: int | None = DRIFT_INTERVAL  # seconds between drift checks; None: no watch
    drift_status: bool = False  # a commit status per repository+environment when drift changes

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        database_url: str | None = None,
        need_secret: bool = True,
    ) -> RelayConfig:
        """Read the settings; UsageError when the secret is missing or the database is not
        PostgreSQL (workers need no secret)."""
        env = with_files(dict(os.environ if environ is None else environ))
        url = database_url or env.get("BOJDEPLOY_DATABASE_URL") or ""
        secret = env.get(SECRET_VAR, "")
        if need_secret and not secret.strip():
            raise UsageError(f"{SECRET_VAR} is not set: the relay refuses unsigned webhooks")
        if not url:
            raise UsageError("BOJDEPLOY_DATABASE_URL is not set: the relay needs PostgreSQL")
        if not url.startswith(("postgresql://", "postgres://")):
            raise UsageError(
                f"the relay needs PostgreSQL (a shared queue), not {redact_url(url)!r}: "
                "set BOJDEPLOY_DATABASE_URL to postgresql://..."
            )
        repos = frozenset(r.strip() for r in env.get(REPOS_VAR, "").split(",") if r.strip())
        return cls(
            database_url=url,
            secret=secret.encode(),
            repos=repos or None,
            public_url=(env.get(URL_VAR) or "").rstrip("/") or None,
            settings=Settings.from_env(env, database_url=url),
            api_token=env.get(API_TOKEN_VAR, "").strip() or None,
            drift_interval=drift_interval(env.get(DRIFT_INTERVAL_VAR, "")),
            drift_status=flag(DRIFT_STATUS_VAR, env.get(DRIFT_STATUS_VAR, "")),
        )

    def allows(self, repository: str) -> bool:
        """Whether `repository` (owner/name) may deploy through this relay."""
        return self.repos is None or repository in self.repos
