"""Loading: manifest text -> validated manifests, every problem with file:line: key.

Pure: files are read through the `Reader` given (`core.files.RepoFiles` for a checkout), so the
same code loads from a working tree, a git object or a test's dictionary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bojdeploy.core.files import Reader, RepoFileError
from bojdeploy.core.loadcache import MAX_DOCUMENTS, LoadCache
from bojdeploy.core.loaded import LoadedManifest, secret_names_of, with_files
from bojdeploy.core.manifest import MODELS, Manifest
from bojdeploy.core.sandbox import Budget
from bojdeploy.core.secrets import secret_env
from bojdeploy.core.template import RenderContext, Renderer, TemplateProblem
from bojdeploy.core.yamlsrc import (
    Document,
    control_character,
    format_path,
    key_by_indentation,
    parse_documents,
    validate,
    value_problems,
)
from bojdeploy.errors import Problem

__all__ = ["MAX_DOCUMENTS", "LoadCache", "load_file"]

MAX_PROBLEMS = 50  # problems reported for one file


def _raw_environments(text: str) -> list[list[str] | None] | None:
    """metadata.environments of each document of an unrendered file, when it parses as YAML."""
    docs = list(parse_documents(text, ""))
    if any(isinstance(d, Problem) for d in docs):
        return None
    out: list[list[str] | None] = []
    for d in docs:
        data = d.data if isinstance(d, Document) else None
        if data is None:
            continue
        meta = data.get("metadata") if isinstance(data, dict) else None
        envs = meta.get("environments") if isinstance(meta, dict) else None
        out.append(envs if isinstance(envs, list) else None)
    return out


def _key_at_line(text: str, rel: str, line: int | None) -> str:
    """The deepest key path on `line` of the unrendered file, when it parses as YAML."""
    if line is None:
        return ""
    best: tuple[str | int, ...] = ()
    for doc in parse_documents(text, rel):
        if isinstance(doc, Problem):
            return key_by_indentation(text, line)
        for path, at in doc.lines.items():
            if at == line and len(path) > len(best):
                best = path
    return format_path(best)


def _excluded_everywhere(text: str, environment: str) -> bool:
    envs = _raw_environments(text)
    return bool(envs) and all(e is not None and environment not in e for e in envs or [])


def load_file(
    reader: Reader,
    rel: str,
    ctx: RenderContext,
    *,
    require_secrets: bool,
    budget: Budget | None = None,
    cache: LoadCache | None = None,
) -> tuple[list[LoadedManifest], list[Problem]]:
    """Render, parse and validate every document of one manifest file for one environment;
    `cache` shares reads, templates and parses with the other loads of a run."""
    cache = cache or LoadCache(reader, budget)
    reader = cache.reader
    try:
        text = reader.read(rel)
    except RepoFileError as e:
        return [], [Problem(rel, e.line or 1, "", str(e))]
    found = control_character(text)
    if found is not None:
        line, name = found
        key = key_by_indentation(text, line)
        return [], [Problem(rel, line, key, f"control character {name} is not allowed")]
    renderer = Renderer(reader, ctx, templates=cache.templates)
    try:
        rendered = renderer.render(rel, text)
    except TemplateProblem as e:
        if _excluded_everywhere(text, ctx.environment):
            return [], []
        key = _key_at_line(text, rel, e.line)
        return [], [Problem(rel, e.line or 1, key, str(e))]
    loaded: list[LoadedManifest] = []
    problems: list[Problem] = []
    cache.budget.read(rendered.text)
    for count, item in enumerate(cache.parse(rel, rendered.text)):
        if count >= MAX_DOCUMENTS:
            problems.append(
                Problem(rel, item.line or 1, "", f"more than {MAX_DOCUMENTS} documents")
            )
            break
        if isinstance(item, Problem):
            problems.append(item)
            continue
        if item.data is None:
            continue
        result, doc_problems = _load_document(reader, rel, item, renderer, rendered.includes, cache)
        problems += doc_problems
        if result is None:
            continue
        envs = result.manifest.metadata.environments
        unknown = [e for e in envs or () if ctx.environments and e not in ctx.environments]
        for env in unknown:
            i = (envs or []).index(env)
            problems.append(
                Problem(
                    rel,
                    item.line_of(("metadata", "environments", i)),
                    f"metadata.environments[{i}]",
                    f"unknown environment {env!r}; defined: {', '.join(ctx.environments)}",
                )
            )
        if envs is not None and ctx.environment not in envs:
            continue
        problems += _secret_problems(result, ctx.environ, require_secrets)
        loaded.append(result)
    return loaded, _at_most(problems, MAX_PROBLEMS)


def _at_most(problems: list[Problem], limit: int) -> list[Problem]:
    """The first `limit` problems of a file and one line saying how many more there are."""
    if len(problems) <= limit:
        return problems
    first = problems[limit]
    more = f"... and {len(problems) - limit} more problems in this file"
    return [*problems[:limit], Problem(first.file, first.line, "", more)]


def check_document(rel: str, doc: Document) -> tuple[Manifest | None, list[Problem]]:
    """The manifest a parsed document holds, or the problems that stop it (whatever the
    environment: a document rendered alike in several is checked once)."""
    data = doc.data
    problems = [Problem(rel, line, format_path(p), "duplicate key") for p, line in doc.duplicates]
    bad_values = value_problems(doc, rel)
    if bad_values:
        return None, problems + bad_values
    if not isinstance(data, dict):
        return None, [*problems, Problem(rel, doc.line, "", "expected a mapping (a manifest)")]
    kind = data.get("kind")
    model = MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        allowed = ", ".join(MODELS)
        msg = "required key is missing" if kind is None else f"unknown kind {kind!r}"
        return None, [*problems, Problem(rel, doc.line_of(("kind",)), "kind", f"{msg}: {allowed}")]
    manifest, errors = validate(model, data, doc, rel)
    if errors or manifest is None:
        return None, problems + errors
    return manifest, problems  # type: ignore[return-value]


def _load_document(
    reader: Reader,
    rel: str,
    doc: Document,
    renderer: Renderer,
    includes: set[str],
    cache: LoadCache,
) -> tuple[LoadedManifest | None, list[Problem]]:
    manifest, problems = cache.once("check", doc, lambda: check_document(rel, doc))
    if manifest is None:
        return None, list(problems)
    env = renderer.ctx.environment
    loaded = LoadedManifest(
        manifest=manifest,  # type: ignore[arg-type]
        file=rel,
        environment=env,
        doc=doc,
        dependencies=frozenset(includes),
    )
    files, file_problems = _read_files(reader, loaded, renderer)
    names = cache.once("secret names", manifest, lambda: secret_names_of(loaded))
    return with_files(loaded, files, names), problems + file_problems


def _read_files(
    reader: Reader, loaded: LoadedManifest, renderer: Renderer
) -> tuple[dict[str, str], list[Problem]]:
    """Repository files a manifest names: VM user_data_file (rendered), Service configs sources."""
    wanted: list[tuple[tuple[str | int, ...], str, bool]] = []
    spec = loaded.manifest.spec
    cloud_init = getattr(spec, "cloud_init", None)
    if cloud_init is not None and cloud_init.user_data_file:
        wanted.append((("spec", "cloud_init", "user_data_file"), cloud_init.user_data_file, True))
    for i, cfg in enumerate(getattr(spec, "configs", []) or []):
        wanted.append((("spec", "configs", i, "source"), cfg.source, False))
    files: dict[str, str] = {}
    problems: list[Problem] = []
    for path, rel, render in wanted:
        where = (loaded.file, loaded.line_of(*path), format_path(path))
        try:
            norm = reader.path_of(rel)
            content = reader.read(rel)
            files[norm] = renderer.render(rel, content).text if render else content
        except ValueError as e:
            problems.append(Problem(*where, str(e)))
        except TemplateProblem as e:
            problems.append(Problem(rel, e.line or 1, "", str(e)))
    return files, problems


def _secret_problems(
    loaded: LoadedManifest, environ: Mapping[str, str], required: bool
) -> list[Problem]:
    """A missing secret is an error for apply and a warning otherwise, at the key that uses it."""
    problems = []
    for name in sorted(loaded.secret_names):
        if secret_env(name, environ) is not None:
            continue
        path = _path_of_marker(loaded.doc.data, name) or ()
        msg = (
            f"secret {name!r} is not set "
            f"(set the environment variable {name} or BOJDEPLOY_SECRET_{name})"
        )
        problems.append(
            Problem(loaded.file, loaded.doc.line_of(path), format_path(path), msg, not required)
        )
    return problems


def _path_of_marker(
    data: Any, name: str, path: tuple[str | int, ...] = ()
) -> tuple[str | int, ...] | None:
    if isinstance(data, str):
        return path if f"__BOJSECRET_{name}__" in data else None
    items: Iterable[tuple[Any, Any]] = ()
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    for key, value in items:
        found = _path_of_marker(value, name, (*path, key))
        if found is not None:
            return found
    return None
