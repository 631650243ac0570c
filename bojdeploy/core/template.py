"""Jinja2 rendering of manifests: sandboxed, StrictUndefined, confined to the repository."""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from bojdeploy.core.secrets import SECRET_NAME_RE, marker


class TemplateProblem(Exception):
    """A rendering error with the line of the template it happened on."""

    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class RenderContext:
    """What templates can see: the environment name, git facts, vars and the secret source."""

    environment: str
    git: Mapping[str, str]
    vars: Mapping[str, Any]
    environ: Mapping[str, str] = field(default_factory=dict)
    environments: tuple[str, ...] = ()  # every environment bojdeploy.yaml defines


@dataclass
class Rendered:
    """A rendered text and what rendering it touched."""

    text: str
    includes: set[str] = field(default_factory=set)
    secrets: set[str] = field(default_factory=set)


def confine(root: Path, rel: str) -> Path:
    """The path of repository file `rel`; refuses absolute paths and escapes like '../x'."""
    if not rel or Path(rel).is_absolute():
        raise ValueError(f"{rel!r}: use a path relative to the repository root")
    base = root.resolve()
    path = (base / rel).resolve()
    if not path.is_relative_to(base):
        raise ValueError(f"{rel!r} escapes the repository")
    return path


def read_repo_file(root: Path, rel: str) -> str:
    """Text of a repository file, confined to the repository."""
    path = confine(root, rel)
    if not path.is_file():
        raise ValueError(f"{rel!r} does not exist in the repository")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{rel!r} cannot be read: {e}") from e


class Renderer:
    """Renders repository files with one context."""

    def __init__(self, root: Path, ctx: RenderContext):
        self.root = root
        self.ctx = ctx
        # No loader: {% include %} would bypass include()'s confinement and change tracking.
        self.env = SandboxedEnvironment(
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
        )

    def render(self, rel: str, text: str) -> Rendered:
        """Render `text` (the content of repository file `rel`)."""
        out = Rendered("")

        def secret(name: str) -> str:
            if not isinstance(name, str) or not SECRET_NAME_RE.match(name):
                raise ValueError(f"secret({name!r}): names are letters, digits and '_'")
            out.secrets.add(name)
            return marker(name)

        def include(path: str) -> str:
            content = read_repo_file(self.root, path)
            out.includes.add(Path(path).as_posix())
            return content[:-1] if content.endswith("\n") else content

        variables = {
            "environment": self.ctx.environment,
            "git": dict(self.ctx.git),
            "vars": dict(self.ctx.vars),
            "secret": secret,
            "include": include,
        }
        try:
            template = self.env.from_string(text)
            template.filename = rel
            template.name = rel
            out.text = _render(template, variables, rel)
        except jinja2.TemplateSyntaxError as e:
            raise TemplateProblem(f"template syntax error: {e.message}", e.lineno) from e
        return out


def _render(template: jinja2.Template, variables: dict[str, Any], rel: str) -> str:
    try:
        return template.render(variables)
    except jinja2.TemplateSyntaxError:
        raise
    except (jinja2.UndefinedError, jinja2.TemplateError, ValueError, TypeError) as e:
        line = _template_line(e, rel)
        msg = str(e)
        if isinstance(e, jinja2.UndefinedError):
            msg = "undefined value: " + msg.replace("'dict object' has no attribute", "no key")
        raise TemplateProblem(f"template error: {msg}", line) from e


def _template_line(exc: BaseException, rel: str) -> int | None:
    """The template line a runtime error happened on (jinja rewrites frames to template lines)."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename in (rel, "<template>") and frame.lineno is not None:
            line = frame.lineno
    return line
