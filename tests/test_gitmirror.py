"""The relay's clone cache: a bare mirror per clone URL, its token only in an HTTP header."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bojdeploy.engine.gitrepo import Mirror, shown
from bojdeploy.errors import BojdeployError
from tests.helpers import stalling_server
from tests.test_gitrepo import commit, git, isolated_git  # noqa: F401 - a fixture

TOKEN = "tok-9d1c07e5"


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """An empty repository on branch main."""
    repo = tmp_path / "origin"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    return repo


def test_mirror_fetches_shows_and_checks_out_a_commit(origin: Path, tmp_path: Path) -> None:
    sha = commit(origin, {"bojdeploy.yaml": "environments: {}\n", "deploy/web.yml": "a: 1\n"})
    mirror = Mirror(tmp_path / "cache.git", f"file://{origin}")
    assert not (tmp_path / "cache.git").exists()
    mirror.fetch(sha)
    assert mirror.has(sha)
    assert mirror.show(sha, "deploy/web.yml") == "a: 1\n"
    assert mirror.show(sha, "deploy/none.yml") is None
    work = mirror.checkout(sha, tmp_path / "work")
    assert work.info().sha == sha
    assert (tmp_path / "work" / "deploy" / "web.yml").read_text() == "a: 1\n"

    newer = commit(origin, {"deploy/web.yml": "a: 2\n"})
    mirror.fetch(newer)  # an existing mirror fetches what it lacks
    assert mirror.show(newer, "deploy/web.yml") == "a: 2\n"
    assert git(tmp_path / "cache.git", "rev-parse", "refs/heads/main") == newer


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request 403, recording its path and Authorization header."""

    seen: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.seen.append((self.path, self.headers.get("Authorization")))
        self.send_response(403)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def forge() -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    """An HTTP server on 127.0.0.1 that refuses git and remembers what it was sent."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    Recorder.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/infra/deployments.git", Recorder.seen
    server.shutdown()


def test_the_token_goes_in_a_header_never_in_the_url_or_an_error(
    forge: tuple[str, list[tuple[str, str | None]]], tmp_path: Path
) -> None:
    url, seen = forge
    mirror = Mirror(tmp_path / "cache.git", url, TOKEN)
    with pytest.raises(BojdeployError) as failed:
        mirror.fetch("1" * 40)
    assert seen and all(auth == f"token {TOKEN}" for _, auth in seen)
    assert all(TOKEN not in path for path, _ in seen)
    assert TOKEN not in str(failed.value)
    assert str(failed.value).startswith(f"git fetch of {url} failed: ")


def test_no_token_goes_to_a_file_url_and_user_info_is_not_shown(tmp_path: Path) -> None:
    assert (
        shown("https://deploy:pw@gitea.example/infra/d.git") == "https://gitea.example/infra/d.git"
    )
    mirror = Mirror(tmp_path / "cache.git", f"file://{tmp_path}/missing", TOKEN)
    with pytest.raises(BojdeployError, match="git fetch of file://.*/missing failed"):
        mirror.fetch("1" * 40)


def test_a_fetch_from_a_server_that_stalls_is_stopped_with_a_clear_error(tmp_path: Path) -> None:
    with stalling_server() as (base, _):
        stalled = f"{base}/infra/deployments.git"
        mirror = Mirror(tmp_path / "cache.git", stalled, TOKEN, timeout=2)
        with pytest.raises(BojdeployError) as caught:
            mirror.fetch("1" * 40)
    assert str(caught.value) == f"git fetch of {stalled} was stopped after 2s (the server stalled?)"


def test_ancestry_in_the_mirror(origin: Path, tmp_path: Path) -> None:
    old = commit(origin, {"a": "1\n"})
    new = commit(origin, {"a": "2\n"})
    mirror = Mirror(tmp_path / "cache.git", f"file://{origin}")
    mirror.fetch(new)
    assert mirror.is_ancestor(old, new) and mirror.is_ancestor(new, new)
    assert not mirror.is_ancestor(new, old)
    assert not mirror.is_ancestor("2" * 40, new)  # unknown to the mirror
