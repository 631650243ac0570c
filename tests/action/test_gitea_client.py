"""The Gitea client: auth header, retries with backoff, one error type, comments, compare.

Retries are urllib3's: `responses` replays its status retries; the fake Gitea (a real server)
shows timeouts, Retry-After and what is never sent twice."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import responses

from bojdeploy.core.changes import FileChange
from bojdeploy.errors import ForgeError
from bojdeploy.forge.gitea import MAX_RETRY_AFTER, GiteaClient, changes_of
from tests.action import TOKEN, fake_gitea
from tests.conftest import require
from tests.fakes.fake_gitea import FakeGitea, default_swagger

URL = "http://127.0.0.1:3999"
STATUS = f"{URL}/api/v1/repos/infra/deployments/statuses/abc123"
COMMENTS = f"{URL}/api/v1/repos/infra/deployments/issues/9/comments"
STATUS_T = "/repos/{owner}/{repo}/statuses/{sha}"
COMMENTS_T = "/repos/{owner}/{repo}/issues/{index}/comments"
VERSION_T = "/version"


@pytest.fixture
def client() -> Iterator[GiteaClient]:
    gitea = GiteaClient(URL + "/", TOKEN, backoff=0)
    yield gitea
    gitea.close()


@responses.activate
def test_set_status_sends_token_and_body(client: GiteaClient) -> None:
    responses.post(STATUS, status=201, json={"id": 1, "status": "success"})
    client.set_status(
        "infra", "deployments", "abc123", "success", "bojdeploy/prod", "ok", "http://x"
    )
    [call] = responses.calls
    assert call.request.headers["Authorization"] == f"token {TOKEN}"
    assert json.loads(call.request.body or b"") == {
        "state": "success",
        "context": "bojdeploy/prod",
        "description": "ok",
        "target_url": "http://x",
    }


@responses.activate
def test_retries_5xx_and_429_then_succeeds(client: GiteaClient) -> None:
    responses.post(STATUS, status=502)
    responses.post(STATUS, status=429)
    responses.post(STATUS, status=201, json={"id": 1})
    client.set_status("infra", "deployments", "abc123", "pending", "c", "d")
    assert len(responses.calls) == 3


@responses.activate
def test_gives_up_after_the_attempts_with_one_error_type(client: GiteaClient) -> None:
    responses.post(STATUS, status=500)
    with pytest.raises(ForgeError, match="Gitea answered 500 .tried 3 times"):
        client.set_status("infra", "deployments", "abc123", "pending", "c", "d")
    assert len(responses.calls) == 3


@responses.activate
def test_4xx_is_not_retried_and_carries_giteas_message(client: GiteaClient) -> None:
    responses.post(STATUS, status=403, json={"message": "token does not have write access"})
    with pytest.raises(ForgeError, match="403: token does not have write access") as error:
        client.set_status("infra", "deployments", "abc123", "pending", "c", "d")
    assert len(responses.calls) == 1
    assert TOKEN not in str(error.value)


@pytest.fixture
def fake() -> Iterator[FakeGitea]:
    with fake_gitea() as gitea:
        yield gitea


def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits urllib3 asks for between attempts, recorded instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr("urllib3.util.retry.time.sleep", waits.append)
    return waits


def test_backoff_doubles(fake: FakeGitea, monkeypatch: pytest.MonkeyPatch) -> None:
    waits = slept(monkeypatch)
    for _ in range(3):
        fake.fail_next("POST", STATUS_T, 503)
    gitea = GiteaClient(fake.url, TOKEN, attempts=4, backoff=0.5)
    try:
        gitea.set_status("infra", "deployments", "abc123", "pending", "c", "d")
    finally:
        gitea.close()
    assert fake.count("POST", STATUS_T) == 4
    assert waits == [1.0, 2.0]  # urllib3 retries at once the first time, then backs off


def test_a_comment_whose_answer_times_out_is_posted_once(fake: FakeGitea) -> None:
    """Gitea created the comment, the answer came too late: sending it again would duplicate it."""
    release = fake.stall_next("POST", COMMENTS_T)
    gitea = GiteaClient(fake.url, TOKEN, timeout=0.5, backoff=0)
    try:
        with pytest.raises(ForgeError, match="no answer from Gitea .* not sent again"):
            gitea.upsert_comment("infra", "deployments", 9, "<!-- m -->", "plan one")
    finally:
        release.set()
        gitea.close()
    assert fake.count("POST", COMMENTS_T) == 1
    assert [c["body"] for c in fake.comments[9]] == ["plan one\n\n<!-- m -->\n"]


def test_a_comment_answered_502_is_not_posted_again(fake: FakeGitea) -> None:
    fake.fail_next("POST", COMMENTS_T, 502)
    gitea = GiteaClient(fake.url, TOKEN, backoff=0)
    try:
        with pytest.raises(ForgeError, match="Gitea answered 502$"):
            gitea.upsert_comment("infra", "deployments", 9, "<!-- m -->", "plan one")
    finally:
        gitea.close()
    assert fake.count("POST", COMMENTS_T) == 1


def test_a_comment_refused_with_429_is_posted_after_retry_after(fake: FakeGitea) -> None:
    fake.fail_next("POST", COMMENTS_T, 429, retry_after="1")
    gitea = GiteaClient(fake.url, TOKEN, backoff=0)
    try:
        assert gitea.upsert_comment("infra", "deployments", 9, "<!-- m -->", "plan one") > 0
    finally:
        gitea.close()
    assert fake.count("POST", COMMENTS_T) == 2
    assert len(fake.comments[9]) == 1


def test_reads_are_retried_on_502_503_and_429_honouring_retry_after(fake: FakeGitea) -> None:
    fake.fail_next("GET", VERSION_T, 502)
    fake.fail_next("GET", VERSION_T, 503, retry_after="1")
    fake.fail_next("GET", VERSION_T, 429, retry_after="1")
    gitea = GiteaClient(fake.url, TOKEN, attempts=4, backoff=0)
    try:
        assert gitea.version() == "1.25.4"
    finally:
        gitea.close()
    assert fake.count("GET", VERSION_T) == 4


def test_a_status_is_sent_again_after_a_timeout(fake: FakeGitea) -> None:
    """A second identical status changes nothing, so a status POST opts in to retries."""
    release = fake.stall_next("POST", STATUS_T)
    gitea = GiteaClient(fake.url, TOKEN, timeout=0.5, backoff=0)
    try:
        gitea.set_status("infra", "deployments", "abc123", "success", "bojdeploy/p", "ok")
    finally:
        release.set()
        gitea.close()
    assert fake.count("POST", STATUS_T) == 2
    assert {s["context"] for s in fake.statuses["abc123"]} == {"bojdeploy/p"}


def test_retry_after_is_bounded(fake: FakeGitea, monkeypatch: pytest.MonkeyPatch) -> None:
    waits = slept(monkeypatch)
    fake.fail_next("GET", VERSION_T, 503, retry_after="3600")
    gitea = GiteaClient(fake.url, TOKEN, backoff=0)
    try:
        assert gitea.version() == "1.25.4"
    finally:
        gitea.close()
    assert waits == [MAX_RETRY_AFTER]


@responses.activate
def test_upsert_comment_creates_then_patches(client: GiteaClient) -> None:
    responses.get(COMMENTS, json=[{"id": 3, "body": "someone else"}])
    responses.post(COMMENTS, status=201, json={"id": 4, "body": "x"})
    assert client.upsert_comment("infra", "deployments", 9, "<!-- m -->", "plan one") == 4
    posted = json.loads(responses.calls[1].request.body or b"")["body"]
    assert posted == "plan one\n\n<!-- m -->\n"

    responses.get(COMMENTS, json=[{"id": 3, "body": "someone else"}, {"id": 4, "body": posted}])
    patch = responses.patch(f"{URL}/api/v1/repos/infra/deployments/issues/comments/4", json={})
    assert client.upsert_comment("infra", "deployments", 9, "<!-- m -->", "plan two") == 4
    assert patch.call_count == 1


@pytest.mark.parametrize(
    ("commits", "expected"),
    [
        ([[("a.yml", "modified")]], [("M", "a.yml")]),
        ([[("a.yml", "modified")], [("a.yml", "added")]], [("A", "a.yml")]),  # newest first
        ([[("a.yml", "removed")], [("a.yml", "added")]], []),
        ([[("a.yml", "deleted")], [("a.yml", "modified")]], [("D", "a.yml")]),
        ([[("a.yml", "added")], [("a.yml", "deleted")]], [("M", "a.yml")]),
        ([[("b.yml", "renamed"), ("c.yml", "modified")]], [("A", "b.yml"), ("M", "c.yml")]),
    ],
)
def test_changes_of_folds_commits_into_one_diff(
    commits: list[list[tuple[str, str]]], expected: list[tuple[str, str]]
) -> None:
    answer = [{"files": [{"filename": f, "status": s} for f, s in files]} for files in commits]
    assert changes_of(answer) == [FileChange(status, path) for status, path in expected]


@responses.activate
@pytest.mark.parametrize(
    "answer",
    [
        {"status": 404, "json": {"message": "not found"}},
        {"status": 200, "json": {"total_commits": 300, "commits": [{"files": []}]}},
        {"status": 200, "json": {"total_commits": 1, "commits": [{"files": None}]}},
    ],
)
def test_compare_returns_none_when_gitea_cannot_tell(
    client: GiteaClient, answer: dict[str, object]
) -> None:
    responses.get(f"{URL}/api/v1/repos/infra/deployments/compare/a...b", **answer)  # type: ignore[arg-type]
    assert client.compare("infra", "deployments", "a", "b") is None


def test_every_call_fits_the_swagger_spec() -> None:
    swagger = default_swagger()
    require("Gitea's swagger spec", swagger.is_file(), f"{swagger} is missing")
    fake = FakeGitea(token=TOKEN).start()
    fake.compare_answers["a...b"] = {
        "total_commits": 1,
        "commits": [{"sha": "b", "files": [{"filename": "deploy/x.yml", "status": "added"}]}],
    }
    gitea = GiteaClient(fake.url, TOKEN, backoff=0)
    try:
        gitea.set_status("infra", "deployments", "abc", "pending", "bojdeploy/p", "d", "http://u")
        first = gitea.upsert_comment("infra", "deployments", 9, "<!-- m -->", "one")
        assert gitea.upsert_comment("infra", "deployments", 9, "<!-- m -->", "two") == first
        assert gitea.compare("infra", "deployments", "a", "b") == [FileChange("A", "deploy/x.yml")]
    finally:
        gitea.close()
        fake.stop()
    assert fake.problems == []
    assert [c.status for c in fake.calls] == [201, 200, 201, 200, 200, 200]
    assert [c["body"] for c in fake.comments[9]] == ["two\n\n<!-- m -->\n"]


@responses.activate
@pytest.mark.parametrize("body", [{"json": ["not", "an", "object"]}, {"body": "<html>"}])
def test_a_4xx_without_giteas_message_is_still_a_forge_error(
    client: GiteaClient, body: dict
) -> None:
    responses.post(STATUS, status=403, **body)
    with pytest.raises(ForgeError, match="Gitea answered 403: Forbidden"):
        client.set_status("infra", "deployments", "abc123", "success", "c", "d", "http://x")
