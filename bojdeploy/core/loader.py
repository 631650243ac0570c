"""Manifests from files: discover, render, parse, validate; every problem with file:line: key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from bojdeploy.core.fields import KINDS
from bojdeploy.core.manifest import MODELS, Manifest
from bojdeploy.core.sandbox import Budget
from bojdeploy.core.secrets import (
    MARKER_RE,
    hashed,
    names_in,
    redact,
    redact_with_refs,
    restore_markers,
    secret_env,
)
from bojdeploy.core.template import (
    RenderContext,
    Renderer,
    RepoFileError,
    TemplateProblem,
    confine,
    read_repo_file,
)
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

MAX_DOCUMENTS = 1000  # YAML documents in one manifest file
MAX_PROBLEMS = 50  # problems reported for one file


@dataclass
class LoadedManifest:
    """A validated manifest for one environment, with where it came from and what it reads."""

    manifest: Manifest
    file: str
    environment: str
    doc: Document
    dependencies: frozenset[str] = frozenset()
    files: dict[str, str] = field(default_factory=dict)
    secret_names: frozenset[str] = frozenset()

    @property
    def kind(self) -> str:
        """'container' | 'service' | 'vm'."""
        return KINDS[self.manifest.kind]

    @property
    def name(self) -> str:
        """metadata.name."""
        return self.manifest.metadata.name

    @property
    def resource_name(self) -> str:
        """The name on the target."""
        return self.manifest.resource_name

    @property
    def line(self) -> int:
        """The first line of the manifest's YAML document."""
        return self.doc.line

    def line_of(self, *path: str | int) -> int:
        """The line of a key path inside this manifest."""
        return self.doc.line_of(path)

    def canonical(self) -> dict[str, Any]:
        """The canonical rendered form (secrets as markers); the config hash is taken over it."""
        spec = self.manifest.spec.model_dump(mode="json", exclude_defaults=True)
        out: dict[str, Any] = {
            "apiVersion": "bojdeploy/v1",
            "kind": self.manifest.kind,
            "metadata": {"name": self.name, "labels": dict(self.manifest.metadata.labels)},
            "spec": spec,
        }
        if self.files:
            out["files"] = {p: _sha256(c) for p, c in sorted(self.files.items())}
        return out

    def record(self) -> dict[str, Any]:
        """What the database keeps: redacted, with file contents and where secrets stood."""
        body = self.canonical()
        body["metadata"]["depends_on"] = list(self.manifest.metadata.depends_on)
        if self.files:
            body["files"] = dict(sorted(self.files.items()))
        redacted, refs = redact_with_refs(body)
        redacted["secret_refs"] = refs
        return redacted  # type: ignore[no-any-return]

    def redacted(self) -> dict[str, Any]:
        """The canonical form with secrets replaced by '***': safe to show and store."""
        return redact(self.canonical())  # type: ignore[no-any-return]

    def config_hash(self, secret_values: Mapping[str, str], key: bytes) -> str:
        """sha256 of the canonical form, secrets as keyed hashes, keys sorted."""
        body = hashed(self.canonical(), secret_values, key)
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def discover(root: Path, patterns: Sequence[str]) -> list[str]:
    """Repository-relative manifest files matching the discovery patterns, sorted."""
    found: set[str] = set()
    for pattern in patterns:
        found.update(p.relative_to(root).as_posix() for p in root.glob(pattern) if p.is_file())
    return sorted(found)


def expand_paths(root: Path, paths: Iterable[Path]) -> list[str]:
    """CLI PATH arguments (files or folders) -> repository-relative YAML files."""
    out: set[str] = set()
    base = root.resolve()
    for given in paths:
        try:
            path = given.resolve()
        except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop (Python < 3.13)
            raise ValueError(f"{given} cannot be resolved: a symlink loop or a bad path") from e
        if not path.is_relative_to(base):
            raise ValueError(f"{given} is outside the repository {root}")
        if path.is_dir():
            for ext in ("*.yml", "*.yaml"):
                out.update(p.relative_to(base).as_posix() for p in path.rglob(ext) if p.is_file())
        elif path.is_file():
            out.add(path.relative_to(base).as_posix())
        else:
            raise ValueError(f"{given} does not exist")
    return sorted(out)


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
    root: Path,
    rel: str,
    ctx: RenderContext,
    *,
    require_secrets: bool,
    budget: Budget | None = None,
) -> tuple[list[LoadedManifest], list[Problem]]:
    """Render, parse and validate every document of one manifest file for one environment."""
    try:
        text = read_repo_file(root, rel)
    except RepoFileError as e:
        return [], [Problem(rel, e.line or 1, "", str(e))]
    found = control_character(text)
    if found is not None:
        line, name = found
        key = key_by_indentation(text, line)
        return [], [Problem(rel, line, key, f"control character {name} is not allowed")]
    renderer = Renderer(root, ctx, budget)
    try:
        rendered = renderer.render(rel, text)
    except TemplateProblem as e:
        if _excluded_everywhere(text, ctx.environment):
            return [], []
        key = _key_at_line(text, rel, e.line)
        return [], [Problem(rel, e.line or 1, key, str(e))]
    loaded: list[LoadedManifest] = []
    problems: list[Problem] = []
    if budget is not None:
        budget.read(rendered.text)
    for count, item in enumerate(parse_documents(rendered.text, rel)):
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
        result, doc_problems = _load_document(root, rel, item, renderer, rendered.includes)
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


def _load_document(
    root: Path, rel: str, doc: Document, renderer: Renderer, includes: set[str]
) -> tuple[LoadedManifest | None, list[Problem]]:
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
    env = renderer.ctx.environment
    loaded = LoadedManifest(manifest=manifest, file=rel, environment=env, doc=doc)  # type: ignore[arg-type]
    files, file_problems = _read_files(root, loaded, renderer)
    loaded.files = files
    loaded.dependencies = frozenset(includes | set(files))
    loaded.secret_names = frozenset(names_in(loaded.canonical()) | _file_secrets(files))
    return loaded, problems + file_problems


def _file_secrets(files: Mapping[str, str]) -> set[str]:
    return {m for content in files.values() for m in MARKER_RE.findall(content)}


def _read_files(
    root: Path, loaded: LoadedManifest, renderer: Renderer
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
            norm = PurePosixPath(confine(root, rel).relative_to(root.resolve())).as_posix()
            content = read_repo_file(root, rel)
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


def manifest_from_record(config: Mapping[str, Any], file: str, environment: str) -> LoadedManifest:
    """Rebuild a LoadedManifest from a recorded config (rollback); secrets become markers again."""
    body = restore_markers(
        {k: v for k, v in config.items() if k not in ("secret_refs", "deployed", "target")},
        config.get("secret_refs") or {},
    )
    files = body.pop("files", {}) or {}
    model = MODELS[body["kind"]]
    manifest = model.model_validate(body)
    doc = Document(data=body, line=1)
    loaded = LoadedManifest(manifest=manifest, file=file, environment=environment, doc=doc)  # type: ignore[arg-type]
    loaded.files = dict(files)
    loaded.dependencies = frozenset(files)
    loaded.secret_names = frozenset(names_in(loaded.canonical()) | _file_secrets(files))
    return loaded
