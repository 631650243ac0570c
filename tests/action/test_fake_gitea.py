"""The fake Gitea holds callers to the swagger spec: paths, methods, token, body fields."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.action import STATUS_PATH, TOKEN, fake_gitea
from tests.fakes.fake_gitea import FakeGitea

AUTH = {"Authorization": f"token {TOKEN}"}
STATUS_BODY = {"state": "success", "context": "c", "description": "d", "target_url": "u"}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGitea]:
    with fake_gitea() as gitea:
        yield gitea


@pytest.fixture(autouse=True)
def fresh(fake: FakeGitea) -> None:
    fake.problems.clear()
    fake.failures.clear()


def call(fake: FakeGitea, method: str, path: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("headers", AUTH)
    return requests.request(method, f"{fake.url}/api/v1{path}", timeout=5, **kwargs)


def test_a_valid_status_is_recorded_and_answered_as_gitea_does(fake: FakeGitea) -> None:
    answer = call(fake, "POST", "/repos/o/r/statuses/abc", json=STATUS_BODY)
    assert answer.status_code == 201
    assert answer.json()["status"] == "success"  # Gitea answers the state as "status"
    assert fake.statuses["abc"][-1]["context"] == "c"
    assert fake.calls[-1].template == STATUS_PATH
    assert fake.problems == []


def test_it_answers_its_version_as_gitea_does(fake: FakeGitea) -> None:
    assert call(fake, "GET", "/version").json() == {"version": "1.25.4"}
    fake.version = "1.26.0"
    try:
        assert call(fake, "GET", "/version").json() == {"version": "1.26.0"}
    finally:
        fake.version = "1.25.4"
    assert fake.problems == []


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "problem"),
    [
        ("GET", "/repos/o/r/nothing/here", {}, 404, "no such path"),
        ("PUT", "/repos/o/r/statuses/abc", {"json": STATUS_BODY}, 405, "PUT is not defined"),
        ("POST", "/repos/o/r/statuses/abc", {"json": STATUS_BODY, "headers": {}}, 401, "token"),
        (
            "POST",
            "/repos/o/r/statuses/abc",
            {"json": STATUS_BODY, "headers": {"Authorization": "token wrong"}},
            401,
            "token",
        ),
        ("POST", "/repos/o/r/statuses/abc", {"json": {"state": "done"}}, 422, "is not one of"),
        (
            "POST",
            "/repos/o/r/statuses/abc",
            {"json": {"status": "success"}},
            422,
            "not in the spec",
        ),
        ("POST", "/repos/o/r/statuses/abc", {"data": "state=success"}, 422, "application/json"),
        ("POST", "/repos/o/r/issues/9/comments", {"json": {}}, 422, "body.body: required"),
        ("POST", "/repos/o/r/issues/9/comments", {"json": {"body": 3}}, 422, "expected string"),
        ("PATCH", "/repos/o/r/issues/comments/x", {"json": {"body": "b"}}, 422, "integer"),
        ("GET", "/repos/o/r/issues/9/comments?page=2", {}, 422, "query parameter 'page'"),
    ],
)
def test_requests_that_break_the_spec_are_refused_and_listed(
    fake: FakeGitea, method: str, path: str, kwargs: dict[str, Any], status: int, problem: str
) -> None:
    assert call(fake, method, path, **kwargs).status_code == status
    assert len(fake.problems) == 1 and problem in fake.problems[0]


def test_it_can_be_told_to_fail_a_path(fake: FakeGitea) -> None:
    fake.fail("POST", STATUS_PATH, 503)
    assert call(fake, "POST", "/repos/o/r/statuses/abc", json=STATUS_BODY).status_code == 503
    assert call(fake, "GET", "/repos/o/r/issues/9/comments").status_code == 200
    assert fake.problems == []


def test_valid_calls_it_cannot_answer_are_listed(fake: FakeGitea) -> None:
    assert call(fake, "GET", "/repos/o/r/branches").status_code == 501
    assert fake.problems == [
        "GET /repos/{owner}/{repo}/branches: valid, but the fake cannot answer"
    ]
