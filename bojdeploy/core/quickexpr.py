"""The simplest `{{ expressions }}` evaluated from their parsed nodes, without compiling them.

Compiling an expression with jinja (code generation and Python's `compile`) costs about a
millisecond; manifests repeat a few (`environment`, `vars.x`) but often hold one of their own
(`vars.base + 7`). An expression made only of names, constants, attribute lookups, `+`, `~`,
`or` and calls of a name with positional arguments is evaluated here by the same calls the
sandbox's compiled code makes, in the same order: `environment.getattr`, `call_binop`, `join`,
`call`, `keep`, and the undefined values of missing names. Anything else is compiled.
"""

from __future__ import annotations

from typing import Any

from jinja2 import nodes
from jinja2.runtime import Context, new_context
from jinja2.utils import missing

from bojdeploy.core.sandbox import BoundedSandbox

_CONSTANTS = (str, int)


def simple(node: nodes.Node) -> bool:
    """Whether `node` is made only of what `evaluate` knows."""
    if isinstance(node, nodes.Name):
        return node.ctx == "load"
    if isinstance(node, nodes.Const):
        return type(node.value) in _CONSTANTS
    if isinstance(node, nodes.Getattr):
        return (
            node.ctx == "load"
            and isinstance(node.node, nodes.Name | nodes.Getattr)
            and (simple(node.node))
        )
    if isinstance(node, nodes.Add | nodes.Or):
        return simple(node.left) and simple(node.right)
    if isinstance(node, nodes.Concat):
        return all(simple(n) for n in node.nodes)
    if isinstance(node, nodes.Call):
        return (
            isinstance(node.node, nodes.Name)
            and simple(node.node)
            and not node.kwargs
            and node.dyn_args is None
            and node.dyn_kwargs is None
            and all(simple(a) for a in node.args)
        )
    return False


def context_for(env: BoundedSandbox, variables: dict[str, Any]) -> Context:
    """The context a template made by `env.from_string` would render `variables` in."""
    return new_context(env, None, {}, variables, False, env.make_globals(None), None)


def evaluate(env: BoundedSandbox, context: Context, node: nodes.Node) -> Any:
    """The value the compiled `{% set result = node %}` would store (with its budget steps)."""
    env.budget.tick()
    return env.call(context, env.keep, _value(env, context, node))


def _value(env: BoundedSandbox, context: Context, node: nodes.Node) -> Any:
    if isinstance(node, nodes.Name):
        found = context.resolve_or_missing(node.name)
        return env.undefined(name=node.name) if found is missing else found
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.Getattr):
        return env.getattr(_value(env, context, node.node), node.attr)
    if isinstance(node, nodes.Add):
        left, right = _value(env, context, node.left), _value(env, context, node.right)
        return env.call_binop(context, "+", left, right)
    if isinstance(node, nodes.Or):
        return _value(env, context, node.left) or _value(env, context, node.right)
    if isinstance(node, nodes.Concat):
        return env.join(tuple(_value(env, context, n) for n in node.nodes))
    if isinstance(node, nodes.Call):
        func = _value(env, context, node.node)
        return env.call(context, func, *(_value(env, context, a) for a in node.args))
    raise TypeError(f"not a simple expression: {type(node).__name__}")
