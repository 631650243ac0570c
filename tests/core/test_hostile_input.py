"""Hostile input (a fork's pull request): every refusal is `file:line: key: message`, exit 2,
fast and small; never a traceback. A corpus in tests/cases/hostile and a hypothesis fuzzer."""

from __future__ import annotations

import os
import re
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bojdeploy.core.config import RepoConfig, parse_config
from bojdeploy.core.files import RepoFiles
from bojdeploy.core.template import RenderContext, Renderer, TemplateProblem
from bojdeploy.core.validation import load_manifests
from tests.helpers import run_cli

CASES = Path(__file__).parents[1] / "cases" / "hostile"
EXAMPLES = Path(__file__).parents[2] / "examples"
DIRECTIVE = re.compile(rb"^# (expect|symlink|fifo|grow): (.*)$")
SECONDS = 5.0  # per case, CLI start included
PEAK_BYTES = 200 * 1024 * 1024
CONFIG = (
    'environments:\n  production: {branches: [main]}\npolicy:\n  allowed_host_paths: ["/srv/"]\n'
)
VALID = "apiVersion: bojdeploy/v1\nkind: Container\nmetadata: {name: ok}\nspec: {image: busybox}\n"


def directives(data: bytes) -> list[tuple[str, str]]:
    """The `# name: value` lines a case starts with."""
    out = []
    for line in data.split(b"\n"):
        match = DIRECTIVE.match(line)
        if not match:
            break
        out.append((match.group(1).decode(), match.group(2).decode("latin-1")))
    return out


def build_repo(case: Path, repo: Path) -> tuple[str, str]:
    """A repository holding the case; returns (the file the error names, the fragment)."""
    data = case.read_bytes()
    (repo / "deploy").mkdir(parents=True)
    if case.name.endswith(".bojdeploy.yaml"):
        rel = "bojdeploy.yaml"
        (repo / "deploy" / "ok.yml").write_text(VALID)
    else:
        rel = f"deploy/{case.name}"
        (repo / "bojdeploy.yaml").write_text(CONFIG)
    (repo / rel).write_bytes(data)
    expect = ""
    for name, value in directives(data):
        if name == "expect":
            expect = value
        elif name == "symlink":
            link, target = (part.strip() for part in value.split("->"))
            os.symlink(target, repo / link)
        elif name == "fifo":
            os.mkfifo(repo / value)
        elif name == "grow":
            target, size = value.split()
            path = repo / (rel if target == "SELF" else target)
            with path.open("ab") as f:
                f.write(b"#" * int(size) + b"\n")
    assert expect, f"{case.name} has no '# expect:' line"
    return rel, expect


@pytest.mark.parametrize("case", sorted(CASES.iterdir()), ids=lambda p: p.name)
def test_hostile_case_is_refused_with_file_and_line(case: Path, tmp_path: Path) -> None:
    rel, expect = build_repo(case, tmp_path / "repo")
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = run_cli("validate", str(tmp_path / "repo"))
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    text = result.out + result.err
    assert "Traceback" not in text
    assert result.code == 2, text
    ours = [line for line in result.err.splitlines() if line.startswith(f"error: {rel}:")]
    assert any(expect in line for line in ours), f"expected {expect!r} in:\n{result.err}"
    line_re = re.compile(rf"^error: {re.escape(rel)}:\d+: ")
    assert all(line_re.match(line) for line in ours), result.err
    assert elapsed < SECONDS, f"{case.name} took {elapsed:.1f}s"
    assert peak < PEAK_BYTES, f"{case.name} used {peak / 2**20:.0f} MiB"


def test_many_files_share_one_work_budget(tmp_path: Path) -> None:
    """Many files each just under the per-file limit do not add up to unbounded work."""
    repo = tmp_path / "repo"
    (repo / "deploy").mkdir(parents=True)
    (repo / "bojdeploy.yaml").write_text(CONFIG)
    loop = "{% for i in range(10000) %}{% for j in range(18) %}{% endfor %}{% endfor %}"
    for i in range(40):
        (repo / "deploy" / f"m{i:02}.yml").write_text(
            f"apiVersion: bojdeploy/v1\nkind: Container\nmetadata: {{name: m{i}}}\n"
            f'spec: {{image: busybox, user: "{loop}"}}\n'
        )
    started = time.monotonic()
    result = run_cli("validate", str(repo))
    assert time.monotonic() - started < 3 * SECONDS
    assert result.code == 2
    assert "templates run more than 2000000 blocks in all" in result.err
    assert "not loaded: the manifests and their templates do more work than allowed" in result.err


# --- fuzzing the loader in-process -----------------------------------------------------------

HOSTILE_VALUES = st.sampled_from(
    [
        True,
        False,
        None,
        0,
        -1,
        10**40,
        1e308,
        float("nan"),
        float("inf"),
        "",
        " ",
        " host",
        "HOST",
        "host",
        "container:x",
        "~/x:/x",
        "./x:/x",
        "/var/run/docker.sock:/s",
        "a\x00b",
        "\x1b[31m",
        "../../etc/passwd",
        "{{ range(10**9)|list }}",
        "{{ 'x' * 10**9 }}",
        "{{ include('../../etc/hostname') }}",
        "{{ secret('X') }}",
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        "1e400s",
        "99999999999999999999d",
        "-5s",
        "2 gigs",
        [],
        {},
        [[[[[]]]]],
        {"a": {"b": {"c": None}}},
        "x" * 5000,
    ]
)


def _yaml_examples() -> list[Any]:
    out = []
    for path in sorted((EXAMPLES / "deploy").rglob("*.yml")):
        try:
            out.append(yaml.safe_load(path.read_text()))
        except yaml.YAMLError:  # an unquoted template: not YAML before rendering
            continue
    return out


SERVICE = {
    "apiVersion": "bojdeploy/v1",
    "kind": "Service",
    "metadata": {"name": "api", "labels": {"team": "api"}},
    "spec": {
        "image": "busybox:1",
        "replicas": "{{ vars.replicas }}",
        "ports": ["8080:80", {"target": 81, "published": 8081}],
        "networks": ["backend"],
        "update": {"parallelism": 1, "delay": "5s", "max_failure_ratio": 0.5},
        "restart": {"condition": "any", "max_attempts": 3},
        "resources": {"limits": {"cpus": 0.5, "memory": "64M"}},
        "healthcheck": {"test": "true", "interval": "2s", "retries": 3},
        "configs": [{"source": "deploy/m.yml", "target": "/etc/m", "mode": 0o440}],
    },
}
VM = {
    "apiVersion": "bojdeploy/v1",
    "kind": "VM",
    "metadata": {"name": "vm1", "environments": ["production"]},
    "spec": {
        "template": "debian",
        "vcpus": 2,
        "memory": "1G",
        "networks": [{"network": "lan", "mac": "aa:bb:cc:dd:ee:ff"}],
        "cloud_init": {"user_data": "#cloud-config", "params": {"k": "v"}},
        "wait": {"start": "1m", "ip": 0},
    },
}
MANIFESTS = [*_yaml_examples(), SERVICE, VM]
REPO_CONFIG = yaml.safe_load((EXAMPLES / "bojdeploy.yaml").read_text())
FUZZ = settings(
    max_examples=int(os.environ.get("BOJDEPLOY_FUZZ_EXAMPLES", "60")),
    deadline=3000,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def paths_of(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a YAML value (the places a mutation can hit)."""
    out = [path]
    if isinstance(data, dict):
        for key, value in data.items():
            out += paths_of(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += paths_of(value, (*path, i))
    return out


def mutate(data: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    """A copy of `data` with the value at `path` replaced, deleted or given an unknown key."""
    if not path:
        return value if action == "replace" else data
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        copy: Any = dict(data)
        if not rest and action == "delete":
            copy.pop(head, None)
        elif not rest and action == "extra":
            copy[f"{head}_x"] = value
        else:
            copy[head] = mutate(data[head], rest, action, value)
        return copy
    copy = list(data)
    copy[head] = mutate(data[head], rest, action, value)
    return copy


@st.composite
def mutated(draw: st.DrawFn, documents: list[Any]) -> str:
    """YAML text: a valid document with one to three hostile mutations, sometimes aliased."""
    data = draw(st.sampled_from(documents))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths_of(data)))
        action = draw(st.sampled_from(["replace", "delete", "extra"]))
        data = mutate(data, path, action, draw(HOSTILE_VALUES))
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    if draw(st.booleans()):
        text = text.replace("spec:", "spec: &s", 1) + "extra: [*s, *s, *s]\n"
    return text


YAMLISH = st.text(alphabet=st.sampled_from(list("{}[]&*!|>-:?,#'\"% \n\t\\~@`x1.e")), max_size=30)


@st.composite
def spliced(draw: st.DrawFn, documents: list[Any]) -> str:
    """YAML text of a valid document with YAML/Jinja punctuation spliced in at random places."""
    text = yaml.safe_dump(draw(st.sampled_from(documents)), sort_keys=False)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        insert = draw(st.one_of(YAMLISH, st.sampled_from(["{{", "}}", "{%", "%}", "&a", "*a"])))
        text = text[:at] + insert + text[at:]
    return text


ATOMS = st.sampled_from(
    ["1", "7", "1000", "100000", "'x'", "'ab' * 1000", "[1, 2]", "range(10000)", "vars.big", "ns.v"]
)
OPERATORS = st.sampled_from(
    ["*", "**", "+", "~", "%", "|join(%s)", "|center(%s)", "|replace('', %s)"]
)
FILTERS = ["|list", "|string", "|tojson", "|sum", "|batch(1000)|list", "|map('string')|list"]


@st.composite
def expressions(draw: st.DrawFn, depth: int = 3) -> str:
    """A Jinja expression made of operators and filters that can make values large."""
    if depth == 0 or draw(st.booleans()):
        return draw(ATOMS)
    left, right = draw(expressions(depth - 1)), draw(expressions(depth - 1))
    op = draw(OPERATORS)
    text = f"({left}){op % f'({right})'}" if "%s" in op else f"({left} {op} {right})"
    return text + draw(st.sampled_from(["", "|length", *FILTERS]))


@st.composite
def templates(draw: st.DrawFn) -> str:
    """A template that grows a namespace value in a loop, then prints an expression."""
    step = draw(expressions())
    loops = draw(st.integers(1, 64))
    return (
        "{% set ns = namespace(v=[1]) %}"
        f"{{% for i in range({loops}) %}}{{% set ns.v = {step} %}}{{% endfor %}}"
        f"{{{{ {draw(expressions())} }}}}"
    )


def assert_loads_cleanly(tmp_path: Path, manifest: str | bytes, config: RepoConfig) -> None:
    """The loader returns problems (each with a file and a line), raises nothing, stays small."""
    path = tmp_path / "deploy" / "m.yml"
    path.parent.mkdir(exist_ok=True)
    if isinstance(manifest, str):
        manifest = manifest.encode("utf-8", "surrogatepass")
    path.write_bytes(manifest)
    ctx = RenderContext("production", {"sha": "0" * 40}, {"replicas": 2}, {}, ("production",))
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = load_manifests(RepoFiles(tmp_path), ["deploy/m.yml"], ctx, config)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < SECONDS
    assert peak < PEAK_BYTES, f"{peak / 2**20:.0f} MiB"
    for problem in result.problems:
        assert problem.file == "deploy/m.yml", problem
        assert isinstance(problem.line, int) and problem.line >= 1, problem


@FUZZ
@given(text=st.text(max_size=400))
def test_arbitrary_text_never_raises(tmp_path: Path, text: str) -> None:
    assert_loads_cleanly(tmp_path, text, RepoConfig())
    config, problems = parse_config(text)
    assert all(p.line is not None and p.line >= 1 for p in problems), problems


@FUZZ
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(tmp_path: Path, data: bytes) -> None:
    assert_loads_cleanly(tmp_path, data, RepoConfig())


@settings(FUZZ, deadline=None)  # tracemalloc slows rendering; the time is asserted below
@given(template=templates())
def test_template_work_stays_bounded(tmp_path: Path, template: str) -> None:
    """Whatever a template computes, rendering ends quickly, small, with a problem or a text."""
    renderer = Renderer(
        RepoFiles(tmp_path), RenderContext("production", {}, {"big": list(range(5000))})
    )
    tracemalloc.start()
    started = time.monotonic()
    try:
        renderer.render("deploy/m.yml", template)
    except TemplateProblem:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.monotonic() - started < 2 * SECONDS
    assert peak < PEAK_BYTES, f"{peak / 2**20:.0f} MiB"


@FUZZ
@given(text=mutated(MANIFESTS))
def test_mutated_manifests_never_raise(tmp_path: Path, text: str) -> None:
    assert_loads_cleanly(tmp_path, text, RepoConfig())


@FUZZ
@given(text=spliced(MANIFESTS))
def test_spliced_manifests_never_raise(tmp_path: Path, text: str) -> None:
    assert_loads_cleanly(tmp_path, text, RepoConfig())


@FUZZ
@given(text=st.one_of(mutated([REPO_CONFIG]), spliced([REPO_CONFIG])))
def test_mutated_repository_configs_never_raise(tmp_path: Path, text: str) -> None:
    config, problems = parse_config(text)
    assert (config is None) == bool(problems) or not problems
    for problem in problems:
        assert problem.file == "bojdeploy.yaml" and problem.line is not None, problem
    if config is not None:
        assert_loads_cleanly(tmp_path, (EXAMPLES / "deploy" / "web.yml").read_text(), config)
