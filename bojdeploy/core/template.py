"""Jinja2 rendering of manifests: sandboxed, StrictUndefined, confined to the repository."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.parser import Parser
from jinja2.utils import consume

from bojdeploy.core import quickexpr
from bojdeploy.core.files import Reader, RepoFileError
from bojdeploy.core.sandbox import MAX_STRING, BoundedSandbox, Budget, TemplateLimit
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


Expression = jinja2.Template | nodes.Expr  # compiled, or simple enough for quickexpr
Piece = str | tuple[int, Expression]  # literal text, or (line, an `{{ expression }}`)
# Text without these renders to itself (jinja only turns CR and CRLF into LF).
_SYNTAX = ("{{", "{%", "{#", "\r")


def has_template_syntax(text: str) -> bool:
    """Whether rendering could change `text`."""
    return any(mark in text for mark in _SYNTAX)


class Templates:
    """The sandbox of one run and its templates, each compiled once whatever the environment."""

    def __init__(self, budget: Budget | None = None):
        # No loader: {% include %} would bypass include()'s confinement and change tracking.
        self.env = BoundedSandbox(
            budget,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
        )
        self._compiled: dict[tuple[str, str], jinja2.Template] = {}
        self._pieces: dict[tuple[str, str], list[Piece] | None] = {}
        self._expressions: dict[str, Expression] = {}  # by the expression's source

    def pieces(self, rel: str, text: str) -> list[Piece] | None:
        """`text` as literal parts and compiled expressions (with their lines) when it holds
        only plain `{{ expression }}`s; None when it needs the whole template compiled.

        Manifests repeat a few expressions (`environment`, `vars.x`, `secret('X')`): each is
        compiled once for every file and environment of a run, by the same sandbox."""
        key = (rel, text)
        if key not in self._pieces:
            self._pieces[key] = None if "{%" in text or "{#" in text else self._split(text)
        return self._pieces[key]

    def _split(self, text: str) -> list[Piece] | None:
        try:
            quick = None if "\r" in text else _split_plainly(text, self._expression)
            return self._split_lexed(text) if quick is None else quick
        except (jinja2.TemplateSyntaxError, RecursionError, MemoryError, SyntaxError):
            return None  # the whole template's compile reports it

    def _split_lexed(self, text: str) -> list[Piece] | None:
        out: list[Piece] = []
        source: list[str] | None = None
        try:
            for line, token, value in self.env.lexer.tokeniter(text, None):
                if token == "data" and source is None:
                    out.append(value)
                elif token == "variable_begin" and value == "{{" and source is None:
                    source, start = [], line
                elif token == "variable_end" and value == "}}" and source is not None:
                    out.append((start, self._expression("".join(source))))
                    source = None
                elif source is not None and token not in ("variable_begin", "variable_end"):
                    source.append(value)
                else:
                    return None  # whitespace control, or anything but an expression
        except (jinja2.TemplateSyntaxError, RecursionError, MemoryError, SyntaxError):
            return None  # the whole template's compile reports it
        return None if source is not None else out

    def _expression(self, source: str) -> Expression:
        """The parsed expression `source` when quickexpr evaluates it, else a template that
        stores its value as `result` (compile_expression's)."""
        found = self._expressions.get(source)
        if found is None:
            parser = Parser(self.env, source, state="variable")
            expression = parser.parse_expression()
            if not parser.stream.eos:
                raise jinja2.TemplateSyntaxError("more than one expression", 1)
            expression.set_environment(self.env)
            if quickexpr.simple(expression):
                found = expression
            else:
                body = [nodes.Assign(nodes.Name("result", "store"), expression, lineno=1)]
                found = self.env.from_string(nodes.Template(body, lineno=1))
            self._expressions[source] = found
        return found

    def compile(self, rel: str, text: str) -> jinja2.Template:
        """The template of `text` (the content of repository file `rel`); TemplateProblem."""
        key = (rel, text)
        template = self._compiled.get(key)
        if template is not None:
            return template
        try:
            template = self.env.from_string(text)
        except jinja2.TemplateSyntaxError as e:
            raise TemplateProblem(f"template syntax error: {e.message}", e.lineno) from e
        except (RecursionError, MemoryError, SyntaxError) as e:  # nesting Python cannot compile
            raise TemplateProblem("template nested too deeply", None) from e
        template.filename = rel
        template.name = rel
        self._compiled[key] = template
        return template


def _split_plainly(text: str, expression: Callable[[str], Expression]) -> list[Piece] | None:
    """`text` split at each `{{ ... }}` as jinja's lexer splits it, without the lexer; None
    when an expression could end elsewhere for the lexer (braces, whitespace control).
    A `}}` inside a string leaves a string open, which `expression` refuses to parse."""
    out: list[Piece] = []
    at, line = 0, 1
    while (start := text.find("{{", at)) >= 0:
        end = text.find("}}", start + 2)
        source = text[start + 2 : end]
        if end < 0 or not source or "{" in source or "}" in source or source[0] in "+-":
            return None
        if source[-1] in "+-":
            return None
        if start > at:
            out.append(text[at:start])
        line += text.count("\n", at, start)
        out.append((line, expression(source)))
        line += source.count("\n")
        at = end + 2
    if at < len(text):
        out.append(text[at:])
    return out


class Renderer:
    """Renders repository files with one context; `include()` reads through `reader`."""

    def __init__(
        self,
        reader: Reader,
        ctx: RenderContext,
        budget: Budget | None = None,
        templates: Templates | None = None,
    ):
        self.reader = reader
        self.ctx = ctx
        self.templates = templates or Templates(budget)
        self.env = self.templates.env
        self._included: dict[str, tuple[str, str]] = {}  # path -> its text, its name

    def render(self, rel: str, text: str) -> Rendered:
        """Render `text` (the content of repository file `rel`)."""
        if not has_template_syntax(text):
            if len(text) > MAX_STRING:
                message = f"template error: template output longer than {MAX_STRING} characters"
                raise TemplateProblem(message, 1)
            return Rendered(text)
        out = Rendered("")

        def secret(name: str) -> str:
            if not isinstance(name, str) or not SECRET_NAME_RE.match(name):
                raise ValueError(f"secret({name!r}): names are letters, digits and '_'")
            out.secrets.add(name)
            return marker(name)

        def include(path: str) -> str:
            found = self._included.get(path)
            if found is None:  # a loop may include one file many times
                found = self._included[path] = (
                    self.reader.read(path),
                    PurePosixPath(path).as_posix(),
                )
            content, name = found
            out.includes.add(name)
            return content[:-1] if content.endswith("\n") else content

        variables = {
            "environment": self.ctx.environment,
            "git": dict(self.ctx.git),
            "vars": dict(self.ctx.vars),
            "secret": secret,
            "include": include,
        }
        self.env.reset()  # compiling counts towards the render's time, as rendering does
        pieces = self.templates.pieces(rel, text)
        template = self.templates.compile(rel, text) if pieces is None else None
        try:
            if template is not None:
                out.text = _render(template, variables, rel)
            else:
                out.text = _render_pieces(self.env, pieces or [], variables)
        finally:
            self.env.budget.stop()
        return out


def _render_pieces(env: BoundedSandbox, pieces: list[Piece], variables: dict[str, Any]) -> str:
    """What the template of `pieces` renders: each expression's value as `{{ }}` writes it."""
    size, lines, chunks = 0, 1, []
    context = None  # one for every expression, as one template has
    for piece in pieces:
        if isinstance(piece, str):
            chunk = piece
        else:
            line, expression = piece
            try:
                context = context or quickexpr.context_for(env, variables)
                if isinstance(expression, nodes.Expr):
                    value = quickexpr.evaluate(env, context, expression)
                else:
                    consume(expression.root_render_func(context))
                    value = context.vars.pop("result")  # not seen by the next expression
                chunk = str(env.budget.check(value))  # as finalize does
            except TemplateProblem:
                raise
            except Exception as e:  # noqa: BLE001 - whatever a template does wrong is the user's
                raise TemplateProblem(f"template error: {_message(e)}", line) from e
        size += len(chunk)
        if size > MAX_STRING:
            message = f"template error: template output longer than {MAX_STRING} characters"
            raise TemplateProblem(message, lines)
        lines += chunk.count("\n")
        chunks.append(chunk)
    return "".join(chunks)


def _render(template: jinja2.Template, variables: dict[str, Any], rel: str) -> str:
    """Render with the output bounded; any failure of an untrusted template is a problem."""
    size, lines, chunks = 0, 1, []
    try:
        for chunk in template.generate(variables):
            size += len(chunk)
            if size > MAX_STRING:  # the line the output had reached is close to the culprit
                message = f"template error: template output longer than {MAX_STRING} characters"
                raise TemplateProblem(message, lines)
            lines += chunk.count("\n")
            chunks.append(chunk)
        return "".join(chunks)
    except TemplateProblem:
        raise
    except Exception as e:  # noqa: BLE001 - whatever a template does wrong is the user's error
        raise TemplateProblem(f"template error: {_message(e)}", _template_line(e, rel)) from e


def _message(e: BaseException) -> str:
    msg = str(e)
    if isinstance(e, jinja2.UndefinedError):
        return "undefined value: " + msg.replace("'dict object' has no attribute", "no key")
    if isinstance(e, RecursionError):
        return "recursion too deep"
    if isinstance(e, RepoFileError | TemplateLimit | jinja2.TemplateError | ValueError):
        return msg
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def _template_line(exc: BaseException, rel: str) -> int | None:
    """The template line a runtime error happened on (jinja rewrites frames to template lines)."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename in (rel, "<template>") and frame.lineno is not None:
            line = frame.lineno
    return line
