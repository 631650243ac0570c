"""The deployment repository being worked on: its root, config, git facts and manifests."""

from __future__ import annotations

import dataclasses
import glob
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bojdeploy.core.changes import FileChange, Selected, Selection
from bojdeploy.core.config import CONFIG_FILE, RepoConfig, load_config
from bojdeploy.core.discovery import YAML_PATTERNS, discover
from bojdeploy.core.files import RepoFiles
from bojdeploy.core.loader import LoadCache
from bojdeploy.core.sandbox import Budget
from bojdeploy.core.template import RenderContext
from bojdeploy.core.validation import LoadResult, load_manifests
from bojdeploy.engine.gitrepo import GitInfo, GitRepo
from bojdeploy.engine.hostpaths import docker_host_for, resolved_path_problems
from bojdeploy.errors import BojdeployError, ManifestError, UsageError

Compare = Callable[[str, str], list[FileChange] | None]  # forge compare API: (before, after)


@dataclass
class Workspace:
    """A checked-out deployment repository."""

    root: Path
    config: RepoConfig
    git: GitRepo | None
    info: GitInfo
    explicit: list[str] | None = None  # files named on the command line (None: discovery)
    # Template work of every load of this run: many environments must not multiply it.
    budget: Budget = field(default_factory=Budget, repr=False, compare=False)
    # Reads, templates and parses every environment of this run shares.
    _cache: LoadCache | None = field(default=None, init=False, repr=False, compare=False)
    _files: list[str] | None = field(default=None, init=False, repr=False, compare=False)

    def manifest_files(self) -> list[str]:
        """Every manifest file: discovered ones plus any named explicitly (looked for once)."""
        if self._files is None:
            patterns = self.config.manifests
            found = set(discover(RepoFiles(self.root).candidates(patterns), patterns))
            self._files = sorted(found | set(self.explicit or ()))
        return list(self._files)

    def nothing_found(self) -> str:
        """The warning when no manifest is in scope: where bojdeploy looked."""
        where = ", ".join(self.config.manifests) if self.explicit is None else "the given paths"
        return f"no manifests found in {self.root} (looked for {where})"

    def environment(self, requested: str | None, hint: str = "name it explicitly") -> str:
        """The environment to work on: --env, else the one the branch maps to."""
        envs = self.config.environments
        if requested:
            if requested not in envs:
                raise UsageError(
                    f"unknown environment {requested!r}; {CONFIG_FILE} defines: {', '.join(envs)}"
                )
            return requested
        if not self.info.branch:
            raise UsageError(f"cannot tell the environment (no branch checked out): {hint}")
        env = self.config.environment_for_branch(self.info.branch)
        if env is None:
            raise UsageError(
                f"branch {self.info.branch!r} maps to no environment in {CONFIG_FILE}: {hint}"
            )
        return env

    def render_context(self, environment: str, environ: Mapping[str, str]) -> RenderContext:
        """What templates see for `environment`."""
        return RenderContext(
            environment=environment,
            git=dataclasses.asdict(self.info),
            vars=self.config.vars_for(environment),
            environ=environ,
            environments=tuple(self.config.environments),
        )

    def load(
        self, environment: str, environ: Mapping[str, str], *, require_secrets: bool = False
    ) -> LoadResult:
        """Load and validate every manifest of `environment`."""
        ctx = self.render_context(environment, environ)
        if self._cache is None:
            self._cache = LoadCache(RepoFiles(self.root), self.budget)
        result = load_manifests(
            self._cache.reader,
            self.manifest_files(),
            ctx,
            self.config,
            require_secrets=require_secrets,
            cache=self._cache,
        )
        docker_host = docker_host_for(self.config, environment, environ)
        allowed = self.config.policy.allowed_host_paths
        result.problems += resolved_path_problems(result.manifests, allowed, docker_host)
        return result

    def select(
        self, result: LoadResult, changed_since: str | None, fallback: Compare | None = None
    ) -> Selection:
        """Which loaded manifests this run considers, and why."""
        files = sorted({m.file for m in result.manifests})
        if self.explicit is not None:
            named = [p for p in files if p in set(self.explicit)]
            return Selection(
                tuple(Selected(p, "named on the command line") for p in named), (), False
            )
        if not changed_since:
            return Selection(tuple(Selected(p, "every manifest in scope") for p in files), (), True)
        if self.git is None:
            raise UsageError(f"--changed-since needs a git checkout; {self.root} is not one")
        return self._changed(result, files, changed_since, fallback)

    def _changed(
        self, result: LoadResult, files: list[str], since: str, fallback: Compare | None
    ) -> Selection:
        assert self.git is not None
        prefix = self.root.resolve().relative_to(self.git.root.resolve()).as_posix()
        pre = "" if prefix == "." else prefix + "/"
        deps = {pre + m.file: [pre + d for d in m.dependencies] for m in result.manifests}
        selection = self.git.detect_changes(
            since,
            "HEAD",
            [pre + f for f in files],
            deps,
            patterns=[pre + p for p in self.config.manifests],
            config_file=pre + CONFIG_FILE,
            fallback=fallback,
        )
        strip = len(pre)
        return dataclasses.replace(
            selection,
            selected=tuple(Selected(s.path[strip:], s.reason) for s in selection.selected),
            deleted=tuple(d[strip:] for d in selection.deleted),
        )


def find_root(start: Path) -> Path:
    """The repository root: the nearest folder up from `start` with bojdeploy.yaml or .git."""
    here = start.resolve()
    if here.is_file():
        here = here.parent
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file() or (folder / ".git").exists():
            return folder
    return here


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
            folder = path.relative_to(base).as_posix()
            prefix = "" if folder == "." else glob.escape(folder) + "/"
            patterns = [prefix + p for p in YAML_PATTERNS]
            out.update(discover(RepoFiles(base).candidates(patterns), patterns))
        elif path.is_file():
            out.add(path.relative_to(base).as_posix())
        else:
            raise ValueError(f"{given} does not exist")
    return sorted(out)


def open_workspace(
    paths: Sequence[Path] = (), *, branch: str | None = None, repository: str | None = None
) -> Workspace:
    """Open the repository that holds `paths` (or the current folder)."""
    start = Path(paths[0]) if paths else Path.cwd()
    if not start.exists():
        raise UsageError(f"{start} does not exist")
    root = find_root(start)
    explicit = None
    if paths and not (len(paths) == 1 and Path(paths[0]).resolve() == root):
        try:
            explicit = expand_paths(root, [Path(p) for p in paths])
        except ValueError as e:
            raise UsageError(str(e)) from e
    config, problems = load_config(root)
    if config is None or problems:
        raise ManifestError(problems)
    git = GitRepo.find(root)
    try:
        info = git.info(repository=repository, branch=branch) if git else _no_git(root, branch)
    except BojdeployError:  # a repository without commits yet
        info = _no_git(root, branch)
    return Workspace(root=root, config=config, git=git, info=info, explicit=explicit)


def _no_git(root: Path, branch: str | None) -> GitInfo:
    return GitInfo(sha="", short_sha="", branch=branch or "", ref="", repository=root.name)
