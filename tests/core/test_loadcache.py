"""What a run shares across files and environments gives the same results as loading each alone."""

from __future__ import annotations

from collections.abc import Callable

import jinja2
import pytest

from bojdeploy.core import quickexpr, template
from bojdeploy.core.config import RepoConfig
from bojdeploy.core.loadcache import LoadCache
from bojdeploy.core.template import RenderContext, Renderer, TemplateProblem, Templates
from bojdeploy.core.validation import load_manifests
from bojdeploy.core.yamlsrc import Document, parse_documents, value_problems
from tests.core.test_loader import DictFiles

simple = quickexpr.simple
ENVS = ("production", "staging", "development")
PLAIN = "apiVersion: bojdeploy/v1\nkind: Container\nmetadata: {name: plain}\nspec: {image: a}\n"
TEMPLATED = (
    "apiVersion: bojdeploy/v1\nkind: Container\nmetadata: {name: web}\n"
    'spec:\n  image: "a:{{ include(\'VERSION\') }}"\n  user: "{{ environment }}"\n'
)


def ctx(env: str) -> RenderContext:
    return RenderContext(env, {"short_sha": "abc1234"}, {"n": 2}, {}, ENVS)


def test_every_environment_reads_each_file_once_and_loads_the_same() -> None:
    files = DictFiles({"deploy/p.yml": PLAIN, "deploy/t.yml": TEMPLATED, "VERSION": "2\n"})
    cache = LoadCache(files)
    shared = [
        load_manifests(
            cache.reader, ["deploy/p.yml", "deploy/t.yml"], ctx(env), RepoConfig(), cache=cache
        )
        for env in ENVS
    ]
    assert sorted(files.reads) == ["VERSION", "deploy/p.yml", "deploy/t.yml"]
    for env, result in zip(ENVS, shared, strict=True):
        alone = load_manifests(files, ["deploy/p.yml", "deploy/t.yml"], ctx(env), RepoConfig())
        assert result.problems == alone.problems == []
        assert [m.record() for m in result.manifests] == [m.record() for m in alone.manifests]
        assert [m.dependencies for m in result.manifests] == [frozenset(), {"VERSION"}]
        assert result.manifests[1].manifest.spec.user == env


EXPRESSIONS = [
    'a: {{ environment }}\nb: "{{ vars.n * 3 }}"\nc: {{ git.short_sha }}\n',
    "x: {{ include('VERSION') }} {{ secret('TOKEN') }}\n",
    "x: 1\ny: {{ vars.missing }}\n",
    "x: {{ nope }}\n",
    "{{ (1, 2) }} {{ [1, 2] | join(',') }} {{ '{{' }}",
    "x: {{- environment }}\n",
    "x: {{ }}\n",
    "x: {{ range(10 ** 9) | list }}\n",
    "x: {{ result }}\ny: {{ 1 }}\nz: {{ result }}\n",
    "{% if true %}x: {{ environment }}{% endif %}\n",
    # simple enough for quickexpr: names, constants, attributes, +, ~, or, calls
    "a: {{ vars.n + 7 }}\nb: {{ vars.n + 'x' }}\n",
    "a: {{ vars.missing + 1 }}\n",
    "a: {{ nope.x }}\n",
    "a: {{ git.short_sha or 'none' }} {{ git.nope or 'none' }}\n",
    "a: {{ nope or 'x' }}\n",
    "a: {{ environment ~ vars.n ~ 'x' }} {{ nope ~ 'x' }}\n",
    "a: {{ include('MISSING') }}\n",
    "a: {{ include('../VERSION') }}\n",
    "a: {{ secret('bad name') }}\n",
    "a: {{ environment() }}\n",
    "a: {{ vars.n.real }} {{ environment.upper() }}\n",
    "a: {{ environment.format_map(vars) }} {{ environment.__class__ }}\n",
    "a: {{ environment.translate('x') }}\n",
    "a: {{ range(3) }}\nb: {{ range(10 ** 9) }}\n",
    "a: {{ include('VERSION') + include('VERSION') }}\n",
    "a: {{ 'x' + 1 }} {{ 0 }}\n",
    "a: {{ vars }} {{ git }} {{ vars.n.__class__ }}\n",
    "a: {{ vars.n + vars.n + vars.n + vars.n + vars.n }}\n",
    # where a `}}` ends an expression for jinja's lexer, and where it does not
    "a: {{ '}}' }}\nb: {{ \"x}}\" ~ 'y' }}\n",
    "a: {{ environment -}}\n  b\n",
    "a: {{+ environment }}\n",
    "a: {{ -vars.n }} {{ vars.n- }}\n",
    "a: {{ {'k': 1}['k'] }} {{ {'k': {'j': 2}} }}\n",
    "a: {{ (vars.n }} b: {{ [1, 2 }} ]\n",
    "a: {{ environment }}}\nb: {{{ environment }}\n",
    "a: {{ environment\n }}\nb: {{\nvars.n }}\nc: {{ vars.n }}\n",
    "a: {{ environment }}\nb: {{ vars.n",
    "a: {{ environment }}{{ environment }}\n{{ vars.n }}",
]


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_templates_of_expressions_render_as_whole_templates_do(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def render(
        split: bool, quick: bool = True
    ) -> tuple[str, set[str], set[str]] | tuple[str, int | None]:
        templates = Templates()
        if not split:
            templates.pieces = lambda rel, text: None  # type: ignore[method-assign]
        monkeypatch.setattr(quickexpr, "simple", simple if quick else lambda node: False)
        renderer = Renderer(DictFiles({"VERSION": "2\n"}), ctx("staging"), templates=templates)
        try:
            out = renderer.render("deploy/m.yml", text)
        except TemplateProblem as e:
            return str(e), e.line
        return out.text, out.includes, out.secrets

    assert render(split=True) == render(split=True, quick=False) == render(split=False)


@pytest.mark.parametrize("text", [t for t in EXPRESSIONS if "{%" not in t])
def test_expressions_are_found_as_jinja_lexer_finds_them(text: str) -> None:
    """Where the plain split gives pieces, they are the lexer's pieces."""
    templates = Templates()

    def attempt(split: Callable[[], object]) -> object:
        try:
            return split()
        except jinja2.TemplateSyntaxError:
            return None  # the whole template's compile reports it

    plain = attempt(lambda: template._split_plainly(text, templates._expression))
    if plain is not None:
        assert plain == attempt(lambda: templates._split_lexed(text))


def test_text_without_template_syntax_is_not_rendered_but_crlf_is_normalised() -> None:
    renderer = Renderer(DictFiles({}), ctx("staging"))
    assert renderer.render("a.yml", "a: '{ x }'\n").text == "a: '{ x }'\n"
    assert renderer.render("a.yml", "a: 1\r\nb: 2\r\n").text == "a: 1\nb: 2\n"


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\na: 2\nb: {c: [1, {d: 2}], c: 3}\n",
        "<<: {a: 1}\na: 2\n",
        "x: &x [1]\ny: *x\n",
        "? [a]\n: 1\n",
        "a: " + "[" * 70 + "]" * 70 + "\n",
        "n: " + "1" * 120 + "\n",
        "x: 1\n---\ny: {z: [1, 2]}\n",
        "a: 0x1f\nb: 1.5e3\nc: ~\nd: yes\ne: 2001-12-14\nf: !!binary aGVsbG8=\ng: '1'\n",
        "a: !!set {x, y}\nb: !!omap [a: 1]\nc: !foo bar\n",
        "1: a\n2: b\n",
        "a: [1, 2]\na: x\n",
        "a: 2001-13-45\n",
        "a: =\n",
        "x: [a, [b, {d: e}]]\nw: |\n  block\n",
    ],
)
def test_documents_without_anchors_index_as_documents_with_them(text: str) -> None:
    """The walk for documents without anchors finds what the general one finds."""
    fast = list(parse_documents(text, "f.yml"))
    # An unused anchor sends the text through the general path; lines shift by none.
    general = list(parse_documents(text + "# &unused\n", "f.yml"))
    assert [_facts(d) for d in fast] == [_facts(d) for d in general]


def _facts(doc: object) -> object:
    if isinstance(doc, Document):
        return doc.data, doc.line, doc.lines, doc.duplicates
    return doc


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("a: [x, {b: 'c'}]\nd: 1.5\ne: !!binary aGVsbG8=\n", False),
        ('a: "x\\x01y"\n', True),
        ('a: {"k\\u0007": 1}\n', True),
        ("a: [1, .nan]\n", True),
        ("a: {b: -.inf}\n", True),
        ("a: !!float nan\n", True),
        ("a: !!binary AAE=\n", True),
        ('a: "\\x9f"\n', True),
    ],
)
def test_values_checked_while_parsing_as_value_problems_checks_them(text: str, bad: bool) -> None:
    """A document the walk finds clean has no value problems; the others are checked in full."""
    (fast,) = parse_documents(text, "f.yml")
    (general,) = parse_documents(text + "# &unused\n", "f.yml")
    assert isinstance(fast, Document) and isinstance(general, Document)
    assert fast.clean is not bad and not general.clean
    assert value_problems(fast, "f.yml") == value_problems(general, "f.yml")
    assert bool(value_problems(general, "f.yml")) is bad
