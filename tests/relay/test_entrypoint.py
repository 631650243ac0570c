"""The action image's entry point doubles as the relay's: `relay` and `worker` go to the CLI;
their secrets may come from files (Docker secrets, systemd credentials)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bojdeploy.errors import UsageError
from bojdeploy.frontends.relay.config import RelayConfig

ROOT = Path(__file__).resolve().parents[2]


def entrypoint(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run entrypoint.py as the image does, with no bojdeploy settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOJDEPLOY_", "INPUT_"))}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, str(ROOT / "entrypoint.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["relay", "--port", "18080"], "BOJDEPLOY_WEBHOOK_SECRET is not set"),
        (["worker", "--concurrency", "2"], "BOJDEPLOY_DATABASE_URL is not set"),
    ],
)
def test_relay_and_worker_arguments_run_the_cli(
    tmp_path: Path, args: list[str], reason: str
) -> None:
    done = entrypoint(tmp_path, *args)
    assert done.returncode == 2, done.stderr
    assert reason in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_without_arguments_it_is_the_action(tmp_path: Path) -> None:
    done = entrypoint(tmp_path)  # no checkout, no inputs: the action says what it misses
    assert done.returncode == 2
    assert "::error::cannot tell the environment" in done.stdout


def test_secrets_come_from_files_as_docker_secrets_give_them(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("from-a-file\n")
    (tmp_path / "db").write_text("postgresql://relay:pw@db/bojdeploy")
    env = {
        "BOJDEPLOY_WEBHOOK_SECRET_FILE": str(tmp_path / "secret"),
        "BOJDEPLOY_DATABASE_URL_FILE": str(tmp_path / "db"),
        "BOJDEPLOY_GITEA_TOKEN_FILE": str(tmp_path / "secret"),
        "BOJDEPLOY_GITEA_TOKEN": "set-directly-wins",
    }
    config = RelayConfig.from_env(env)
    assert config.secret == b"from-a-file"
    assert config.database_url == "postgresql://relay:pw@db/bojdeploy"
    assert config.settings.gitea_token == "set-directly-wins"


def test_a_secret_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(
        UsageError, match="BOJDEPLOY_WEBHOOK_SECRET_FILE: cannot read the file it names"
    ):
        RelayConfig.from_env({"BOJDEPLOY_WEBHOOK_SECRET_FILE": str(missing)})


def test_a_manifest_secret_named_like_a_file_is_taken_literally() -> None:
    """`secret("SIGNING_KEY_FILE")` is a secret, not a path: the relay starts, and its value is
    never echoed in an error."""
    env = {
        "BOJDEPLOY_WEBHOOK_SECRET": "s",
        "BOJDEPLOY_DATABASE_URL": "postgresql://relay@db/bojdeploy",
        "BOJDEPLOY_SECRET_SIGNING_KEY_FILE": "hunter2-very-secret",
    }
    config = RelayConfig.from_env(env)
    assert config.secret == b"s"


def test_an_unreadable_file_variable_never_shows_its_value() -> None:
    with pytest.raises(UsageError) as raised:
        RelayConfig.from_env({"BOJDEPLOY_GITEA_TOKEN_FILE": "a-token-pasted-by-mistake"})
    assert "BOJDEPLOY_GITEA_TOKEN_FILE" in str(raised.value)
    assert "a-token-pasted-by-mistake" not in str(raised.value)
