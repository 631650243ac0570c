"""`bojdeploy plan --offline`: a readable and a JSON plan against the recorded state."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bojdeploy import engine
from bojdeploy.engine.workspace import open_workspace
from bojdeploy.settings import Settings
from bojdeploy.store import open_store
from tests.helpers import run_cli

EXAMPLES = Path(__file__).parent.parent / "examples"
SECRETS = {"WEB_SESSION_KEY": "session-key-value-1", "API_TOKEN": "api-token-value-1"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES, tmp_path / "repo")
    return tmp_path / "repo"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def record_current_state(repo: Path, db_url: str, environ: dict[str, str]) -> None:
    """Record every manifest of production as successfully deployed (what apply records)."""
    ws = open_workspace([repo])
    prepared = engine.prepare(ws, "production", environ)
    with open_store(db_url) as store:
        key = store.installation_key()
        for m in prepared.selected:
            values = engine.secret_values(m, environ)
            store.create_deployment(
                deployment_type=m.kind,
                name=m.name,
                environment="production",
                status="completed",
                config=m.record(),
                config_hash=m.config_hash(values, key),
                manifest=m.file,
            )


def plan(repo: Path, db_url: str, *extra: str, env: dict[str, str] | None = None):  # noqa: ANN201
    args = ["--database-url", db_url, "plan", "--offline", "--env", "production", *extra]
    return run_cli(*args, str(repo), env=env if env is not None else SECRETS)


def test_offline_plan_without_records_creates_everything(repo: Path, db_url: str) -> None:
    result = plan(repo, db_url)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("Plan for environment production against recorded state (offline)")
    creates = [line.split()[2:4] for line in lines if line.strip().startswith("+ create")]
    assert creates == [
        ["service", "api"],
        ["container", "cache"],
        ["vm", "builder"],
        ["container", "web"],
    ]
    assert "Plan: 4 to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged." in lines


def test_offline_plan_json(repo: Path, db_url: str) -> None:
    result = plan(repo, db_url, "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["environment"] == "production"
    assert data["offline"] is True
    assert data["summary"]["create"] == 4
    web = next(s for s in data["steps"] if s["name"] == "web")
    assert web["resource_name"] == "web-production"
    assert web["manifest"] == "deploy/web.yml"


def test_plan_reflects_records_unchanged_and_replace(repo: Path, db_url: str) -> None:
    record_current_state(repo, db_url, SECRETS)
    result = plan(repo, db_url)
    assert "No changes. 4 unchanged." in result.out, result.out

    web = repo / "deploy" / "web.yml"
    web.write_text(web.read_text().replace("bojdeploy-test/web:1", "bojdeploy-test/web:2"))
    result = plan(repo, db_url)
    assert result.code == 0, result.err
    assert any(
        line.strip().startswith("-/+ replace") and "web" in line for line in result.out.splitlines()
    ), result.out
    assert (
        'spec.image: "127.0.0.1:5000/bojdeploy-test/web:1" -> "127.0.0.1:5000/bojdeploy-test/web:2"'
        in (result.out)
    )
    assert "3 unchanged" in result.out


def test_changed_secret_is_detected_but_never_shown(repo: Path, db_url: str) -> None:
    record_current_state(repo, db_url, SECRETS)
    changed = {**SECRETS, "WEB_SESSION_KEY": "session-key-value-2"}
    result = plan(repo, db_url, env=changed)
    assert "-/+ replace" in result.out and "web" in result.out
    assert "a secret or an included file changed" in result.out
    for value in [*SECRETS.values(), *changed.values()]:
        assert value not in result.out + result.err


def test_recorded_config_holds_no_secret(repo: Path, db_url: str) -> None:
    record_current_state(repo, db_url, SECRETS)
    with open_store(db_url) as store:
        configs = json.dumps([d.config for d in store.list_deployments(limit=100)])
    assert "***" in configs
    for value in SECRETS.values():
        assert value not in configs


def test_plan_without_environment_on_unknown_branch_is_a_usage_error(
    repo: Path, db_url: str
) -> None:
    result = run_cli(
        "--database-url", db_url, "plan", "--offline", str(repo), env={"GITHUB_REF_NAME": ""}
    )
    assert result.code == 2
    assert "pass --env" in result.err


def test_offline_plan_needs_no_docker(repo: Path, db_url: str) -> None:
    result = run_cli(
        "--database-url",
        db_url,
        "plan",
        "--offline",
        "--env",
        "production",
        str(repo),
        env={**SECRETS, "DOCKER_HOST": "tcp://127.0.0.1:1"},
    )
    assert result.code == 0, result.err


def test_online_plan_with_unreachable_docker_exits_3(repo: Path, db_url: str) -> None:
    result = run_cli(
        "--database-url",
        db_url,
        "plan",
        "--env",
        "development",
        str(repo),
        env={**SECRETS, "DOCKER_HOST": "tcp://127.0.0.1:1"},
    )
    assert result.code == 3
    assert "cannot reach Docker at tcp://127.0.0.1:1" in result.err


def test_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env({"BOJDEPLOY_DATABASE_URL": "sqlite:///x", "DOCKER_HOST": "y"})
    assert (settings.database_url, settings.docker_host) == ("sqlite:///x", "y")


def test_plan_without_a_secret_does_not_claim_a_change(repo: Path, db_url: str) -> None:
    record_current_state(repo, db_url, SECRETS)
    result = plan(repo, db_url, env={"API_TOKEN": SECRETS["API_TOKEN"]})
    assert result.code == 0, result.err
    web = next(line for line in result.out.splitlines() if " web " in line)
    assert web.strip().startswith("= unchanged")
    assert "secret WEB_SESSION_KEY not available to this run" in web
    assert (
        "warning: deploy/web.yml:14: spec.env.SESSION_KEY: secret 'WEB_SESSION_KEY'" in result.err
    )


def test_xen_certificate_checks_can_be_turned_off() -> None:
    assert Settings.from_env({}).xen_verify is True
    assert Settings.from_env({"BOJDEPLOY_XEN_VERIFY": "false"}).xen_verify is False
