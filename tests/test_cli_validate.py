"""`bojdeploy validate`: exit codes and one precise file:line: key error per problem."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.helpers import run_cli

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = Path(__file__).parent.parent / "examples"

BROKEN = [
    "deploy/unknown-key.yml:7: spec.restrat: unknown key (did you mean 'restart'?)",
    "deploy/bad-port.yml:9: spec.ports[1]: port 70000 out of range 1-65535",
    "deploy/bad-size.yml:8: spec.memory: invalid size '2 gigs'",
    "deploy/duplicate.yml:11: metadata.name: duplicate Container name 'dup'",
    "deploy/missing-image.yml:5: spec.image: required key is missing",
    "deploy/template-error.yml:7: spec.replicas: template error: undefined value: no key "
    "'replica_count'",
    "deploy/unknown-dep.yml:5: metadata.depends_on[0]: unknown manifest 'dupp'",
    "deploy/cycle.yml:5: metadata.depends_on: dependency cycle: cycle-a -> cycle-b -> cycle-a",
    "deploy/policy.yml:9: spec.volumes[1]: policy: mounting the Docker socket",
    "deploy/include-escape.yml:8: spec.env.TOKEN: template error: "
    "'../../../etc/hostname' escapes the repository",
]


def test_examples_are_valid() -> None:
    result = run_cli("validate", str(EXAMPLES))
    assert result.code == 0, result.err
    assert result.out.startswith("valid: 4 files")


def test_broken_manifests_give_one_precise_error_each() -> None:
    result = run_cli("validate", str(FIXTURES / "broken"))
    assert result.code == 2
    errors = [line for line in result.err.splitlines() if line.startswith("error: deploy/")]
    assert len(errors) == len(BROKEN), result.err
    for expected in BROKEN:
        assert any(line.startswith("error: " + expected) for line in errors), expected
    assert "10 problems found; nothing was deployed" in result.err


def test_single_file_is_validated_in_its_repository() -> None:
    result = run_cli("validate", str(FIXTURES / "broken" / "deploy" / "bad-port.yml"))
    assert result.code == 2
    assert "deploy/bad-port.yml:9: spec.ports[1]" in result.err
    assert "cycle" not in result.err


def test_json_log_format_gives_structured_problems() -> None:
    import json

    result = run_cli("--log-format", "json", "validate", str(FIXTURES / "broken"))
    events = [json.loads(line) for line in result.err.splitlines()]
    bad_port = next(e for e in events if e.get("file") == "deploy/bad-port.yml")
    assert (bad_port["line"], bad_port["key"]) == (9, "spec.ports[1]")
    assert all({"event", "level", "timestamp"} <= set(e) and "message" not in e for e in events)


def test_invalid_config_is_reported_with_line(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "bojdeploy.yaml").write_text(
        "environments:\n  production: {branches: [main]}\npolicy:\n  allow_privledged: true\n"
    )
    result = run_cli("validate", str(tmp_path))
    assert result.code == 2
    assert "bojdeploy.yaml:4: policy.allow_privledged: unknown key (did you mean" in result.err


def test_self_heal_must_be_a_boolean(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "bojdeploy.yaml").write_text(
        "environments:\n  production: {branches: [main]}\nself_heal: sometimes\n"
    )
    result = run_cli("validate", str(tmp_path))
    assert result.code == 2
    assert "bojdeploy.yaml:3: self_heal:" in result.err
    assert "Traceback" not in result.err


def test_missing_secret_is_a_warning_for_validate(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "repo")
    result = run_cli("validate", str(tmp_path / "repo"), env={"WEB_SESSION_KEY": "s3cret-value"})
    assert result.code == 0
    assert "warning: deploy/api.yml:20: spec.secrets[0].value: secret 'API_TOKEN' is not set" in (
        result.err
    )
    assert "WEB_SESSION_KEY" not in result.err
    assert "s3cret-value" not in result.out + result.err


def test_environment_specific_template_error_names_the_environment(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "bojdeploy.yaml").write_text(
        "environments:\n"
        "  production: {branches: [main], vars: {port: 80}}\n"
        "  staging: {branches: ['*']}\n"
    )
    (tmp_path / "deploy" / "web.yml").write_text(
        "apiVersion: bojdeploy/v1\nkind: Container\nmetadata: {name: web}\n"
        "spec:\n  image: busybox:1\n  ports: ['{{ vars.port }}:80']\n"
    )
    result = run_cli("validate", str(tmp_path))
    assert result.code == 2
    assert "deploy/web.yml:6: spec.ports[0]: template error: undefined value" in result.err
    assert "(environment staging)" in result.err


def test_a_repository_without_manifests_says_where_it_looked(tmp_path: Path) -> None:
    result = run_cli("validate", str(tmp_path))
    assert result.code == 0
    assert "warning: no manifests found in" in result.err
    assert "deploy/**/*.yml" in result.err


def test_a_bare_port_number_is_a_container_port(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "web.yml").write_text(
        "apiVersion: bojdeploy/v1\nkind: Container\nmetadata: {name: web}\n"
        "spec: {image: 'web:1', ports: [80, '127.0.0.1:8080:80']}\n"
    )
    result = run_cli("validate", str(tmp_path))
    assert (result.code, result.err) == (0, "")


def test_a_template_error_in_a_nested_block_names_its_key(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "api.yml").write_text(
        "apiVersion: bojdeploy/v1\nkind: Service\nmetadata:\n  name: api\nspec:\n"
        "  image: api:1\n  update:\n    parallelism: {{ vars.nope }}\n"
    )
    result = run_cli("validate", str(tmp_path))
    assert result.code == 2
    assert "deploy/api.yml:8: spec.update.parallelism: template error" in result.err
