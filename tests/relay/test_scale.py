"""Two relays and two workers on one database: 200 signed pushes over 10 repository+environment
pairs, every one accounted for, no two deploys of a pair at once (real Docker and PostgreSQL)."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.relay import FakeGitea, Relay, push_payload, rows, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.postgres]
REGISTRY = "127.0.0.1:5000/bojdeploy-test"
PAIRS = 10
PUSHES = 20  # per pair
ZERO = "0" * 40


class TinyRepo:
    """A deployment repository with one small container (no port, no health check) whose
    environment variable changes on every commit."""

    def __init__(self, root: Path, name: str):
        self.root = root
        self.name = name
        (root / "deploy").mkdir(parents=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "ci@example.com")
        self.git("config", "user.name", "CI")
        (root / "bojdeploy.yaml").write_text("environments:\n  production: {branches: [main]}\n")

    def commit(self, serial: int) -> str:
        """Commit the manifest with MODE=serial; the new sha."""
        (self.root / "deploy" / "app.yml").write_text(
            "apiVersion: bojdeploy/v1\nkind: Container\n"
            f"metadata: {{name: {self.name}}}\n"
            f"spec:\n  image: {REGISTRY}/web:1\n  env: {{MODE: '{serial}'}}\n"
            "  labels: {io.bojdeploy.test: 'true'}\n  stop_timeout: 1s\n  timeout: 20s\n"
        )
        self.git("add", "-A")
        self.git("commit", "-q", "-m", f"mode {serial}")
        return self.git("rev-parse", "HEAD")

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(self.root), *args], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()


def test_two_relays_and_two_workers_take_200_pushes_over_10_pairs(
    tmp_path: Path,
    postgres_database: str,
    gitea: FakeGitea,
    docker_cleanup: None,  # first: the relays are stopped before the containers go
    relays: list[Relay],
    test_images: dict[str, str],
    docker_client: Any,
) -> None:
    db = postgres_database
    fronts = [Relay(tmp_path, db, gitea).start(workers=1) for _ in range(2)]
    relays.extend(fronts)
    workers = [fronts[i].command("worker", "--concurrency", "2") for i in range(2)]
    suffix = uuid.uuid4().hex[:6]
    repos = [TinyRepo(tmp_path / f"repo{i}", f"bdscale-{i}-{suffix}") for i in range(PAIRS)]
    try:
        history = _push_everything(fronts, repos)
        expected = {sha for shas in history.values() for sha in shas}
        wait_for(
            "all 200 pushes to settle",
            lambda: (
                len(
                    rows(
                        db, "SELECT 1 FROM relay_deliveries WHERE status IN ('deployed', 'failed')"
                    )
                )
                == len(expected)
            ),
            timeout=300,
        )
    finally:
        for proc in workers:
            proc.terminate()
            proc.wait(timeout=30)

    pushes = rows(
        db,
        "SELECT repository, after_sha, status, deploy_job_id, deployments FROM relay_deliveries",
    )
    assert len(pushes) == PAIRS * PUSHES
    assert {sha for _, sha, _, _, _ in pushes} == expected
    assert {status for _, _, status, _, _ in pushes} == {"deployed"}
    deployments = {
        dep_id: (name, commit, status)
        for dep_id, name, commit, status in rows(
            db, "SELECT id, name, git_commit, status FROM deployments"
        )
    }
    assert {status for _, _, status in deployments.values()} == {"completed"}

    # Every push was deployed by its own deploy or coalesced into a deploy of a later commit of
    # the same repository, and every deploy job made exactly one deployment of its pair.
    by_job: dict[int, set[int]] = defaultdict(set)
    for repository, sha, _, job, deps in pushes:
        assert job is not None and deps, (repository, sha)
        by_job[job].update(deps)
        order = history[repository]
        for dep in deps:
            name, commit, _ = deployments[dep]
            assert name == repos[int(repository.rpartition("-")[2])].name
            assert order.index(commit) >= order.index(sha), "a push deployed by an older commit"
    assert all(len(deps) == 1 for deps in by_job.values())
    assert sorted(d for deps in by_job.values() for d in deps) == sorted(deployments)
    assert len(by_job) < PAIRS * PUSHES  # pushes arriving during a deploy coalesced

    for i, repo in enumerate(repos):  # the newest commit of every pair runs
        newest = history[f"scale/repo-{i}"][-1]
        assert deployments[max(d for d, v in deployments.items() if v[0] == repo.name)][1] == newest
        env = docker_client.containers.get(repo.name).attrs["Config"]["Env"]
        assert f"MODE={PUSHES - 1}" in env

    _assert_no_overlap(db)
    for shas in history.values():  # every pushed commit ends with a success status
        for sha in shas:
            overall = [s for s in gitea.statuses[sha] if s["context"] == "bojdeploy/production"]
            assert overall and overall[-1]["status"] == "success", (sha, overall)
    assert gitea.problems == []


def _push_everything(fronts: list[Relay], repos: list[TinyRepo]) -> dict[str, list[str]]:
    """Commit and push PUSHES commits to every repository, spread over both relays and sent
    from several threads at once (paced so that pushes keep arriving while deploys run)."""
    history: dict[str, list[str]] = defaultdict(list)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = []
        for serial in range(PUSHES):
            for i, repo in enumerate(repos):
                name = f"scale/repo-{i}"
                before = history[name][-1] if history[name] else ZERO
                sha = repo.commit(serial)
                history[name].append(sha)
                payload = push_payload(name, f"file://{repo.root}", before, sha)
                answers.append(pool.submit(fronts[(serial + i) % 2].push, payload))
            time.sleep(0.3)  # pacing only: nothing is asserted about time
        for answer in answers:
            assert answer.result()["job_id"] is not None
    return history


def _assert_no_overlap(db: str) -> None:
    """No two deploys of one pair overlapped: by the queue's recorded job events, and by the
    deployments rows' recorded start and end."""
    events = rows(
        db,
        "SELECT j.lock, j.id, e.type, e.at FROM procrastinate_events e "
        "JOIN procrastinate_jobs j ON j.id = e.job_id "
        "WHERE j.task_name = 'bojdeploy:deploy_pair' ORDER BY e.at, e.id",
    )
    spans: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
    started: dict[int, Any] = {}
    for lock, job, kind, at in events:
        if kind == "started":
            started[job] = at
        elif kind in ("succeeded", "failed") and job in started:
            spans[lock].append((started.pop(job), at))
    assert not started, f"deploy jobs that never ended: {started}"
    assert len(spans) == PAIRS
    for lock, jobs in spans.items():
        jobs.sort()
        for (_, end), (start, _) in zip(jobs, jobs[1:], strict=False):
            assert end <= start, f"two deploys of {lock} overlapped"
    recorded = rows(
        db, "SELECT name, created_at, completed_at FROM deployments ORDER BY name, created_at"
    )
    by_name: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
    for name, created, completed in recorded:
        assert completed is not None
        by_name[name].append((created, completed))
    for name, spans_of in by_name.items():
        for (_, end), (start, _) in zip(spans_of, spans_of[1:], strict=False):
            assert end <= start, f"two deployments of {name} overlapped"
