"""Size checks for template values: made before a string or list is built, so none gets huge."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from jinja2.sandbox import SecurityError

MAX_STRING = 1 << 20  # characters in any one value a template makes, and in its whole output
MAX_ITEMS = 100_000  # items in a list a template makes
MAX_EXPANDED = 1 << 20  # items and characters of a value once shared references are written out
MAX_RANGE = 10_000  # range() length
MAX_STEPS = 200_000  # blocks entered (loop iterations, branches, macro bodies)
MAX_WORK = 50_000_000  # characters produced, summed over the render
MAX_CALL_DEPTH = 40  # nested macro / recursive loop calls
MAX_INT_BITS = 4096  # size of integers a template computes
MAX_SECONDS = 5.0  # a last resort: wall-clock time of one render
# The same over every file of one environment (a repository may hold many files).
MAX_TOTAL_STEPS = 2_000_000
MAX_TOTAL_WORK = 200_000_000
MAX_TOTAL_SECONDS = 30.0
_MAX_WIDTH = 10_000  # a format width or precision

# A %-format or {}-format spec with a huge or argument-supplied width or precision.
_PERCENT_WIDE = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\*|\d{5,}|\d*\.(?:\*|\d{5,}))")
_BRACE_WIDE = re.compile(r"\{[^{}]*:[^{}]*(?:\d{5,}|\{)")
_AMPLIFIERS = {"center", "ljust", "rjust", "zfill"}
REFUSED_METHODS = {"translate", "maketrans", "expandtabs", "format_map"}


class TemplateLimit(SecurityError):
    """A template asked for more work than a manifest may (a string, list, loop or depth)."""


def size_of(value: Any) -> int:
    """len() of a string, bytes or collection; 0 for anything else."""
    if isinstance(value, str | bytes | list | tuple | dict | set):
        return len(value)
    return 0


_CONTAINERS = (list, tuple, dict, set, frozenset)


def expanded_size(value: Any, limit: int = MAX_EXPANDED) -> tuple[int, int]:
    """(size, cost): the items and characters `value` has once every shared reference is
    written out (what str() of it would make, roughly), and the work of finding out: one pass
    over its distinct containers. The size stops counting past `limit`; a cycle is over it."""
    if not isinstance(value, _CONTAINERS):
        return size_of(value), 0
    flat = _flat_size(value)
    if flat is not None:  # the common case, in one pass
        return flat, len(value)
    memo: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[Any, bool]] = [(value, False)]
    cost = 0
    while stack:
        item, done = stack.pop()
        key, children = id(item), _children(item)
        cost += len(children)
        if done:
            open_.discard(key)
            total = len(item) + sum(memo.get(id(c), 0) or _leaf(c) for c in children)
            memo[key] = min(total, limit + 1)
        elif key in open_:
            return limit + 1, cost  # a value that contains itself
        elif key not in memo:
            flat = _flat_size(item)
            if flat is not None:
                memo[key] = min(flat, limit + 1)
                continue
            open_.add(key)
            stack.append((item, True))
            stack.extend((c, False) for c in children if _unseen(c, memo))
    return memo[id(value)], cost


def _flat_size(item: Any) -> int | None:
    """The size of a container that holds no container, or None (type checks run in C)."""
    values = _children(item)
    kinds = set(map(type, values))
    if any(issubclass(kind, _CONTAINERS) for kind in kinds):
        return None
    total = len(item) + len(values)
    if all(issubclass(kind, str | bytes) for kind in kinds):
        return total + sum(map(len, values))
    if any(issubclass(kind, str | bytes) for kind in kinds):
        total += sum(len(v) for v in values if isinstance(v, str | bytes))
    return total


def _children(item: Any) -> list[Any]:
    if isinstance(item, dict):
        return [part for pair in item.items() for part in pair]
    return list(item)


def _unseen(value: Any, memo: dict[int, int]) -> bool:
    return isinstance(value, _CONTAINERS) and id(value) not in memo


def _leaf(value: Any) -> int:
    if isinstance(value, _CONTAINERS):
        return 1  # an empty container (a full one is in the memo)
    return len(value) if isinstance(value, str | bytes) else 1


def int_bits(value: Any) -> int:
    """Bits of an integer (not a bool); 0 for anything else."""
    return value.bit_length() if isinstance(value, int) and not isinstance(value, bool) else 0


def bounded(items: Iterator[Any]) -> Iterator[Any]:
    """The items, refusing more than MAX_ITEMS."""
    for i, item in enumerate(items):
        if i >= MAX_ITEMS:
            raise TemplateLimit(f"template list longer than {MAX_ITEMS} items")
        yield item


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse `*`, `**`, `+`, `%` whose result would be huge, before computing it."""
    if operator == "*":
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, str | bytes | list | tuple) and isinstance(n, int):
                limit = MAX_STRING if isinstance(seq, str | bytes) else MAX_ITEMS
                if len(seq) * max(n, 0) > limit:
                    raise TemplateLimit(f"template value too large ({len(seq)} * {n})")
                if expanded_size(seq)[0] * max(n, 0) > MAX_EXPANDED:
                    raise TemplateLimit(f"template value too large (nested lists * {n})")
        if int_bits(left) + int_bits(right) > MAX_INT_BITS:
            raise TemplateLimit(f"template number larger than {MAX_INT_BITS} bits")
    elif operator == "**":
        if int_bits(left) > 1 and isinstance(right, int) and right * int_bits(left) > MAX_INT_BITS:
            raise TemplateLimit(f"template number larger than {MAX_INT_BITS} bits")
    elif operator == "+":
        if size_of(left) + size_of(right) > max(MAX_STRING, MAX_ITEMS):
            raise TemplateLimit("template value too large")
    elif operator == "%" and isinstance(left, str | bytes):
        _check_format(left)


def _check_format(text: Any) -> None:
    spec = text.decode("latin-1") if isinstance(text, bytes) else str(text)
    if _PERCENT_WIDE.search(spec) or _BRACE_WIDE.search(spec):
        raise TemplateLimit(f"format width or precision above {_MAX_WIDTH - 1}, or given as '*'")


def check_method(obj: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
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
    values = list(bounded(iter(items)))
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
FILTER_CHECKS: dict[str, Callable[[tuple[Any, ...], dict[str, Any]], tuple[Any, ...]]] = {
    "center": _f_center,
    "indent": _f_indent,
    "wordwrap": _f_wordwrap,
    "format": _f_format,
    "join": _f_join,
    "replace": _f_replace,
    "batch": _f_count,
    "slice": _f_count,
}
