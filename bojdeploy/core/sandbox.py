"""A Jinja2 sandbox with bounded work: untrusted templates (a fork's pull request) stay cheap."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from functools import wraps
from typing import Any

from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import Concat, Node
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

MAX_STRING = 1 << 20  # characters in any one value a template makes, and in its whole output
MAX_ITEMS = 100_000  # items in a list a template makes
MAX_RANGE = 10_000  # range() length
MAX_STEPS = 200_000  # blocks entered (loop iterations, branches, macro bodies)
MAX_WORK = 50_000_000  # characters produced, summed over the render
MAX_CALL_DEPTH = 40  # nested macro / recursive loop calls
MAX_INT_BITS = 4096  # size of integers a template computes
MAX_SECONDS = 5.0  # a last resort: wall-clock time of one render
_MAX_WIDTH = 10_000  # a format width or precision

# A %-format or {}-format spec with a huge or argument-supplied width or precision.
_PERCENT_WIDE = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\*|\d{5,}|\d*\.(?:\*|\d{5,}))")
_BRACE_WIDE = re.compile(r"\{[^{}]*:[^{}]*(?:\d{5,}|\{)")
_AMPLIFIERS = {"center", "ljust", "rjust", "zfill"}
_REFUSED_METHODS = {"translate", "maketrans", "expandtabs", "format_map"}


class TemplateLimit(SecurityError):
    """A template asked for more work than a manifest may (a string, list, loop or depth)."""


class Budget:
    """Work done by one render, checked against the limits."""

    def __init__(self) -> None:
        self.steps = 0
        self.work = 0
        self.depth = 0
        self.started = time.monotonic()

    def tick(self) -> None:
        """One block entered."""
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TemplateLimit(f"template runs more than {MAX_STEPS} loop iterations and blocks")
        if self.steps % 1024 == 0:
            self._clock()

    def charge(self, value: Any) -> Any:
        """Account for a value just made; refuse it when it is too large."""
        size = _size(value)
        if size > (MAX_ITEMS if isinstance(value, list | tuple | dict | set) else MAX_STRING):
            unit = "items" if isinstance(value, list | tuple | dict | set) else "characters"
            raise TemplateLimit(f"template value too large ({size} {unit})")
        self.work += size
        if self.work > MAX_WORK:
            raise TemplateLimit(f"template produces more than {MAX_WORK} characters in all")
        self._clock()
        return value

    def _clock(self) -> None:
        if time.monotonic() - self.started > MAX_SECONDS:
            raise TemplateLimit(f"template takes longer than {MAX_SECONDS:.0f}s to render")


def _size(value: Any) -> int:
    if isinstance(value, str | bytes | list | tuple | dict | set):
        return len(value)
    return 0


def _int_bits(value: Any) -> int:
    return value.bit_length() if isinstance(value, int) and not isinstance(value, bool) else 0


class _BoundedCodeGenerator(CodeGenerator):
    """Counts every block entered and routes `~` through a size check."""

    def blockvisit(self, nodes: Iterable[Node], frame: Frame) -> None:
        """Every block body first charges one step (loops, branches, macros)."""
        self.writeline("environment.budget.tick()")
        super().blockvisit(nodes, frame)

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        """`a ~ b` joins through environment.join, which refuses huge results."""
        self.write("environment.join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The manifest renderer's environment: sandboxed, immutable built-ins, bounded work."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.budget = Budget()
        self.globals.pop("lipsum", None)
        self.globals["range"] = self._range
        for name, func in list(self.filters.items()):
            self.filters[name] = self._checked_filter(name, func)

    def reset(self) -> None:
        """A fresh budget for the next render."""
        self.budget = Budget()

    def join(self, parts: Iterable[Any]) -> str:
        """`~`: refuses a result past MAX_STRING before making it."""
        texts = [str(p) for p in parts]
        if sum(map(len, texts)) > MAX_STRING:
            raise TemplateLimit(f"template string longer than {MAX_STRING} characters")
        return self.budget.charge("".join(texts))  # type: ignore[no-any-return]

    def _range(self, *args: int) -> range:
        rng = range(*args)
        if len(rng) > MAX_RANGE:
            raise TemplateLimit(f"range() of {len(rng)} items; at most {MAX_RANGE}")
        return rng

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """`*`, `**`, `+` and `%` refuse results that would be huge, before computing them."""
        _check_binop(operator, left, right)
        return self.budget.charge(super().call_binop(context, operator, left, right))

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        """No str.translate/expandtabs/format_map: they multiply sizes in ways not checked."""
        if isinstance(obj, str | bytes) and attr in _REFUSED_METHODS:
            return False
        return bool(super().is_safe_attribute(obj, attr, value))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        """Every call from a template: depth-limited, amplifying str methods checked."""
        args = _check_method(__obj, args)
        budget = __self.budget
        budget.depth += 1
        try:
            if budget.depth > MAX_CALL_DEPTH:
                raise TemplateLimit(f"template calls nested deeper than {MAX_CALL_DEPTH}")
            return budget.charge(super().call(__context, __obj, *args, **kwargs))
        finally:
            budget.depth -= 1

    def _checked_filter(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        check = _FILTER_CHECKS.get(name)

        @wraps(func)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if check is not None:
                args = check(args, kwargs)
            result = func(*args, **kwargs)
            if isinstance(result, Iterator):  # map/select... stay lazy but bounded
                return self.budget.charge(list(_bounded(result)))
            return self.budget.charge(result)

        return checked


def _bounded(items: Iterator[Any]) -> Iterator[Any]:
    for i, item in enumerate(items):
        if i >= MAX_ITEMS:
            raise TemplateLimit(f"template list longer than {MAX_ITEMS} items")
        yield item


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, str | bytes | list | tuple) and isinstance(n, int):
                limit = MAX_STRING if isinstance(seq, str | bytes) else MAX_ITEMS
                if len(seq) * max(n, 0) > limit:
                    raise TemplateLimit(f"template value too large ({len(seq)} * {n})")
        if _int_bits(left) + _int_bits(right) > MAX_INT_BITS:
            raise TemplateLimit(f"template number larger than {MAX_INT_BITS} bits")
    elif operator == "**":
        if (
            _int_bits(left) > 1
            and isinstance(right, int)
            and right * _int_bits(left) > MAX_INT_BITS
        ):
            raise TemplateLimit(f"template number larger than {MAX_INT_BITS} bits")
    elif operator == "+":
        if _size(left) + _size(right) > max(MAX_STRING, MAX_ITEMS):
            raise TemplateLimit("template value too large")
    elif operator == "%" and isinstance(left, str | bytes):
        _check_format(left)


def _check_format(text: Any) -> None:
    spec = text.decode("latin-1") if isinstance(text, bytes) else str(text)
    if _PERCENT_WIDE.search(spec) or _BRACE_WIDE.search(spec):
        raise TemplateLimit(f"format width or precision above {_MAX_WIDTH - 1}, or given as '*'")


def _check_method(obj: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Refuse str methods whose arguments would make a huge string (join gets a list)."""
    target = getattr(getattr(obj, "__wrapped__", obj), "__self__", None)
    name = getattr(obj, "__name__", "")
    if not isinstance(target, str | bytes):
        return args
    if name in _AMPLIFIERS and args and isinstance(args[0], int) and args[0] > MAX_STRING:
        raise TemplateLimit(f"{name}() width {args[0]} above {MAX_STRING}")
    if name == "format":
        _check_format(target)
    elif name == "join" and args:
        return (_check_join(target, args[0]), *args[1:])
    elif name == "replace" and len(args) >= 2:
        _check_replace(target, args[0], args[1])
    return args


def _check_join(sep: Any, items: Any) -> list[Any]:
    values = list(_bounded(iter(items)))
    total = sum(len(v) if isinstance(v, str | bytes) else len(str(v)) for v in values)
    if total + len(sep) * len(values) > MAX_STRING:
        raise TemplateLimit(f"joined string longer than {MAX_STRING} characters")
    return values


def _check_replace(text: Any, old: Any, new: Any) -> None:
    if not isinstance(old, type(text)) or not isinstance(new, type(text)):
        return
    grows = max(len(new) - len(old), 0)
    count = len(text) + 1 if not old else text.count(old)
    if len(text) + count * grows > MAX_STRING:
        raise TemplateLimit(f"replace() result longer than {MAX_STRING} characters")


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], i: int, name: str, default: Any) -> Any:
    return args[i] if len(args) > i else kwargs.get(name, default)


def _f_center(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    width = _arg(args, kwargs, 1, "width", 80)
    if isinstance(width, int) and width > MAX_STRING:
        raise TemplateLimit(f"center width {width} above {MAX_STRING}")
    return args


def _f_indent(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    text, width = str(_arg(args, kwargs, 0, "s", "")), _arg(args, kwargs, 1, "width", 4)
    pad = width if isinstance(width, int) else len(str(width))
    if len(text) + (text.count("\n") + 1) * max(pad, 0) > MAX_STRING:
        raise TemplateLimit(f"indent() result longer than {MAX_STRING} characters")
    return args


def _f_wordwrap(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    wrap = _arg(args, kwargs, 4, "wrapstring", None)
    if wrap is not None and len(str(wrap)) > 16:
        raise TemplateLimit("wordwrap() wrapstring longer than 16 characters")
    return args


def _f_format(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    if args:
        _check_format(args[0])
    return args


def _f_join(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    if len(args) < 2:
        return args
    sep = _arg(args, kwargs, 2, "d", "")
    values = _check_join(str(sep), args[1])
    return (args[0], values, *args[2:])


def _f_replace(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    if len(args) >= 4:
        _check_replace(str(args[1]), str(args[2]), str(args[3]))
    return args


def _f_count(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    n = _arg(args, kwargs, 1, "linecount", None) or _arg(args, kwargs, 1, "slices", None)
    if isinstance(n, int) and n > MAX_ITEMS:
        raise TemplateLimit(f"{n} items; at most {MAX_ITEMS}")
    return args


# Filters whose arguments decide how large the result is: checked before they run.
_FILTER_CHECKS: dict[str, Callable[[tuple[Any, ...], dict[str, Any]], tuple[Any, ...]]] = {
    "center": _f_center,
    "indent": _f_indent,
    "wordwrap": _f_wordwrap,
    "format": _f_format,
    "join": _f_join,
    "replace": _f_replace,
    "batch": _f_count,
    "slice": _f_count,
}
