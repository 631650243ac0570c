"""Inputs, events, log commands, outputs and status texts of the action (no Docker needed)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from bojdeploy.core.plan import Action, Observed, Plan, Step
from bojdeploy.engine.apply import Outcome
from bojdeploy.errors import UsageError
from bojdeploy.frontends.action.inputs import (
    INPUT_DEFAULTS,
    ActionContext,
    input_variable,
    known_secrets,
    parse_flag,
)
from bojdeploy.frontends.action.io import Console, write_outputs
from bojdeploy.frontends.action.status import (
    describe_outcome,
    describe_plan,
    describe_run,
    not_pruned,
    outcomes_markdown,
    result_word,
    runs_by_id,
    shorten,
)
from tests.action import ROOT, action_defaults, read_outputs


def test_defaults_match_action_yml() -> None:
    assert action_defaults() == INPUT_DEFAULTS
    assert INPUT_DEFAULTS["token"] == "${{ github.token }}"


def test_no_doc_suggests_a_secret_name_gitea_refuses() -> None:
    # Gitea refuses secret names starting with GITEA_ or GITHUB_
    files = ["README.md", "action.yml", "docs/gitea-action.md", "examples/.gitea/workflows"]
    texts = [
        p.read_text()
        for f in files
        for p in ([ROOT / f] if (ROOT / f).is_file() else sorted((ROOT / f).glob("*.y*ml")))
    ]
    assert len(texts) >= 4
    for text in texts:
        assert not re.search(r"secrets\.(GITEA|GITHUB)_", text, re.I)
    assert any("secrets.DEPLOY_TOKEN" in text for text in texts)


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("database-url", "INPUT_DATABASE-URL"),
        ("dry-run", "INPUT_DRY-RUN"),
        ("token", "INPUT_TOKEN"),
        ("some.input name", "INPUT_SOME_INPUT_NAME"),
    ],
)
def test_input_variables_keep_dashes(name: str, variable: str) -> None:
    assert input_variable(name) == variable


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("False", False), (" TRUE ", True), ("", None)]
)
def test_string_booleans(text: str, value: bool | None) -> None:
    assert parse_flag(text, "x") is value


@pytest.mark.parametrize("text", ["yes", "1", "on", "maybe"])
def test_other_booleans_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="expected 'true' or 'false'"):
        parse_flag(text, "input prune")


def test_context_reads_inputs_with_defaults_and_the_event(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text('{"inputs": {"environment": "staging", "dry_run": "true", "name": ""}}')
    ctx = ActionContext.from_env(
        {
            "INPUT_DATABASE-URL": " sqlite:///x.db ",
            "INPUT_NAME": "web",
            "GITHUB_EVENT_NAME": "workflow_dispatch",
            "GITHUB_EVENT_PATH": str(event),
        }
    )
    assert ctx.inputs["database-url"] == "sqlite:///x.db"
    assert ctx.inputs["mode"] == "auto" and ctx.inputs["parallel"] == "4"
    assert ctx.dispatch("environment") == "staging"  # the run's choice
    assert ctx.dispatch("dry-run") == "true"  # form keys use underscores
    assert ctx.dispatch("name") == "web"  # empty in the form: the step's input


@pytest.mark.parametrize(
    ("version", "by_id"),
    [
        ("1.25.4", False),
        ("1.21.11", False),
        ("1.26.0", True),
        ("1.26.0-rc1", True),
        ("1.27.0+dev-45-g1a2b3c4", True),
        ("v1.26.1", True),
        ("2.0.0", True),
        ("11.0.1+gitea-1.22.0", False),  # Forgejo: the Gitea it is compatible with decides
        ("development", None),
        ("", None),
    ],
)
def test_gitea_versions_tell_how_runs_are_addressed(version: str, by_id: bool | None) -> None:
    assert runs_by_id(version) is by_id


def test_known_secrets_cover_token_passwords_and_urls() -> None:
    env = {
        "INPUT_TOKEN": "tok-123",
        "INPUT_XEN-PASSWORD": "xen-pw",
        "INPUT_DATABASE-URL": "postgresql://u:db-pw@127.0.0.1/db",
        "BOJDEPLOY_SECRET_API_KEY": "api-key",
    }
    assert {"tok-123", "xen-pw", "db-pw", "api-key"} <= set(known_secrets(env))


def test_console_masks_before_printing_and_scrubs_after() -> None:
    out = io.StringIO()
    console = Console(out)
    console.mask(["s3cret-value", "", "line-one\nline-two", "s3cret-value"])
    console.line("connecting with s3cret-value")
    console.warning("bad\nline-two 100%")
    console.group("container/web")
    console.group("container/api")
    console.end_group()
    assert out.getvalue().splitlines() == [
        "::add-mask::s3cret-value",
        "::add-mask::line-one",
        "::add-mask::line-two",
        "connecting with ***",
        "::warning::bad%0A*** 100%25",
        "::group::container/web",
        "::endgroup::",
        "::group::container/api",
        "::endgroup::",
    ]


def test_outputs_survive_any_value(tmp_path: Path) -> None:
    path = tmp_path / "outputcmd.txt"
    write_outputs({"GITHUB_OUTPUT": str(path)}, {"result": "success", "text": "a\nb=c\n"})
    assert read_outputs(path) == {"result": "success", "text": "a\nb=c\n"}
    write_outputs({}, {"result": "ignored without GITHUB_OUTPUT"})


def outcome(status: str, summary: str = "", error: str | None = None) -> Outcome:
    return Outcome("container", "web", "replace", status, summary, 3, error, 1.0)


@pytest.mark.parametrize(
    ("item", "text"),
    [
        (
            outcome("completed", "replaced container web with web:2 in 3.2s"),
            "replaced container web with web:2 in 3.2s",
        ),
        (outcome("unchanged", "unchanged"), "unchanged: already deployed"),
        (
            outcome("failed", "x", "container web became unhealthy\nlast check..."),
            "failed: container web became unhealthy",
        ),
    ],
)
def test_status_descriptions(item: Outcome, text: str) -> None:
    assert describe_outcome(item) == text


def test_run_descriptions() -> None:
    assert describe_run([], 0.1) == "nothing to deploy: no manifest changed"
    mixed = [outcome("completed", "ok"), outcome("unchanged"), outcome("failed", "x", "boom")]
    assert describe_run(mixed, 12.34) == "1 deployed, 1 unchanged, 1 failed (web) in 12.3s"
    assert shorten("x" * 200) == "x" * 139 + "…"


def test_a_deletion_is_not_counted_as_deployed() -> None:
    deleted = Outcome("container", "old", "delete", "completed", "deleted container old", 4)
    assert describe_run([deleted], 1.0) == "1 deleted in 1.0s"
    both = [outcome("completed", "ok"), deleted]
    assert describe_run(both, 2.0) == "1 deployed, 1 deleted in 2.0s"
    assert result_word(deleted) == "deleted" and result_word(both[0]) == "completed"
    table = outcomes_markdown("t", both, describe_run(both, 2.0))
    assert "| deleted | container | old | #4 |" in table


def observed(name: str, kind: str = "container") -> Observed:
    return Observed(kind=kind, resource_name=name, managed=True, name=name, environment="prod")


def test_what_prune_left_is_described() -> None:
    web, api = observed("web"), observed("api", "service")
    assert not_pruned([web], 1, []) == (
        "1 manifest deleted; not pruned (prune is off): container web still runs"
    )
    assert not_pruned([web, api], 2, []) == (
        "2 manifests deleted; not pruned (prune is off): container web, service api still run"
    )
    assert not_pruned([web], 0, []).startswith("1 managed resource without a manifest; not pruned")
    assert not_pruned([], 1, []) == "1 manifest deleted; nothing of it was running"
    deleted = Outcome("container", "web", "delete", "completed", "deleted", 4)
    assert not_pruned([], 1, [deleted]) == ""  # pruned: the outcome tells it
    moved = Outcome("container", "web", "update", "completed", "updated", 5)
    assert not_pruned([], 1, [moved]) == ""  # moved to another file: still managed
    assert not_pruned([], 0, []) == ""
    note = not_pruned([web], 1, [])
    assert describe_run([], 0.2, note) == note
    assert describe_run([outcome("completed", "ok")], 1.0, note) == f"1 deployed in 1.0s; {note}"


def test_plan_descriptions_are_short_and_have_no_doubled_prefix() -> None:
    create = Step(Action.CREATE, "container", "web", "prod", None, None)
    update = Step(Action.UPDATE, "container", "api", "prod", None, None)
    same = Step(Action.UNCHANGED, "container", "db", "prod", None, None)
    assert describe_plan(Plan("prod", (create, create, update, same))) == "2 to create, 1 to update"
    assert describe_plan(Plan("prod", (same, same))) == "no changes (2 unchanged)"
    left = Plan("prod", (same,), (observed("old"),))
    assert describe_plan(left) == (
        "no changes (1 unchanged); not pruned (prune is off): container old"
    )
