"""A Jinja2 sandbox with bounded work: untrusted templates (a fork's pull request) stay cheap."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from functools import wraps
from typing import Any

from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import Assign, Call, Concat, EnvironmentAttribute, Node
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bojdeploy.core.limits import (
    FILTER_CHECKS,
    MAX_CALL_DEPTH,
    MAX_EXPANDED,
    MAX_ITEMS,
    MAX_RANGE,
    MAX_SECONDS,
    MAX_STEPS,
    MAX_STRING,
    MAX_TOTAL_SECONDS,
    MAX_TOTAL_STEPS,
    MAX_TOTAL_WORK,
    MAX_WORK,
    REFUSED_METHODS,
    TemplateLimit,
    bounded,
    check_binop,
    check_method,
    expanded_size,
    size_of,
)

__all__ = ["MAX_STRING", "BoundedSandbox", "Budget", "TemplateLimit"]


class Budget:
    """Work done by templates: per render (one file) and in all (every file a run loads)."""

    def __init__(self) -> None:
        self.total_steps = 0
        self.total_work = 0
        self.spent = 0.0  # seconds spent rendering, summed over finished renders
        self._sizes: dict[int, tuple[Any, int]] = {}
        self.start()

    def start(self) -> None:
        """A new render: its own counters start from zero, the totals go on."""
        self.steps = 0
        self.work = 0
        self.depth = 0
        self.started = time.monotonic()

    def stop(self) -> None:
        """The render is over: its time counts towards the total."""
        self._sizes.clear()
        self.spent += time.monotonic() - self.started
        self.started = time.monotonic()

    def read(self, text: str) -> None:
        """A file read, to be parsed: parsing YAML costs more than making a string."""
        self.total_work += 4 * len(text)

    @property
    def exhausted(self) -> str | None:
        """Why no further file should be loaded, or None."""
        if self.total_steps > MAX_TOTAL_STEPS or self.total_work > MAX_TOTAL_WORK:
            return "the manifests and their templates do more work than allowed in all"
        if self.spent > MAX_TOTAL_SECONDS:
            return f"templates take longer than {MAX_TOTAL_SECONDS:.0f}s in all"
        return None

    def tick(self) -> None:
        """One block entered."""
        self.steps += 1
        self.total_steps += 1
        if self.steps > MAX_STEPS:
            raise TemplateLimit(f"template runs more than {MAX_STEPS} loop iterations and blocks")
        if self.total_steps > MAX_TOTAL_STEPS:
            raise TemplateLimit(f"templates run more than {MAX_TOTAL_STEPS} blocks in all")
        if self.steps % 1024 == 0:
            self._clock()

    def check(self, value: Any) -> Any:
        """Refuse a value that would be huge once written out (nested shared lists)."""
        size, cost = self._expanded(value)
        if size > MAX_EXPANDED:
            raise TemplateLimit(
                f"template value too large (more than {MAX_EXPANDED} items and characters "
                "once written out)"
            )
        self._work(cost)
        return value

    def _expanded(self, value: Any) -> tuple[int, int]:
        """expanded_size, remembered for the last few large values (a loop uses one often)."""
        if not isinstance(value, list | tuple | dict | set | frozenset) or len(value) < 64:
            return expanded_size(value)
        hit = self._sizes.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1], 0
        size, cost = expanded_size(value)
        if len(self._sizes) >= 32:
            self._sizes.clear()
        self._sizes[id(value)] = (value, size)  # kept alive so that its id is not reused
        return size, cost

    def charge(self, value: Any) -> Any:
        """Account for a value just made; refuse it when it is too large."""
        self.check(value)
        size = size_of(value)
        if size > (MAX_ITEMS if isinstance(value, list | tuple | dict | set) else MAX_STRING):
            unit = "items" if isinstance(value, list | tuple | dict | set) else "characters"
            raise TemplateLimit(f"template value too large ({size} {unit})")
        self._work(size)
        return value

    def _work(self, size: int) -> None:
        self.work += size
        self.total_work += size
        if self.work > MAX_WORK:
            raise TemplateLimit(f"template produces more than {MAX_WORK} characters in all")
        if self.total_work > MAX_TOTAL_WORK:
            raise TemplateLimit(f"templates produce more than {MAX_TOTAL_WORK} characters in all")
        self._clock()

    def _clock(self) -> None:
        now = time.monotonic()
        if now - self.started > MAX_SECONDS:
            raise TemplateLimit(f"template takes longer than {MAX_SECONDS:.0f}s to render")
        if self.spent + now - self.started > MAX_TOTAL_SECONDS:
            raise TemplateLimit(f"templates take longer than {MAX_TOTAL_SECONDS:.0f}s in all")


class _BoundedCodeGenerator(CodeGenerator):
    """Counts every block entered and routes `~` through a size check."""

    def blockvisit(self, nodes: Iterable[Node], frame: Frame) -> None:
        """Every block body first charges one step (loops, branches, macros)."""
        self.writeline("environment.budget.tick()")
        super().blockvisit(nodes, frame)

    def visit_Assign(self, node: Assign, frame: Frame) -> None:
        """`{% set x = value %}` (also `ns.x`) passes the value through environment.keep, a
        call the sandbox checks: nothing huge is kept for later."""
        keep = Call(EnvironmentAttribute("keep"), [node.node], [], None, None, lineno=node.lineno)
        super().visit_Assign(Assign(node.target, keep, lineno=node.lineno), frame)

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

    def __init__(self, budget: Budget | None = None, **options: Any):
        super().__init__(finalize=self._finalize, **options)
        self.budget = budget or Budget()
        self.globals.pop("lipsum", None)
        self.globals["range"] = self._range
        for name, func in list(self.filters.items()):
            self.filters[name] = self._checked_filter(name, func)

    def reset(self) -> None:
        """Fresh per-render counters for the next render (the totals go on)."""
        self.budget.start()

    def keep(self, value: Any) -> Any:
        """The value of a `set` (checked by `call` like every argument)."""
        return value

    def _finalize(self, value: Any) -> Any:
        """Every `{{ value }}` is checked before it is turned into text."""
        return self.budget.check(value)

    def join(self, parts: Iterable[Any]) -> str:
        """`~`: refuses a result past MAX_STRING before making it."""
        texts = [str(self.budget.check(p)) for p in parts]
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
        check_binop(operator, left, right)
        if operator == "%":
            self.budget.check(right)
        return self.budget.charge(super().call_binop(context, operator, left, right))

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        """No str.translate/expandtabs/format_map: they multiply sizes in ways not checked."""
        if isinstance(obj, str | bytes) and attr in REFUSED_METHODS:
            return False
        return bool(super().is_safe_attribute(obj, attr, value))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        """Every call from a template: depth-limited, amplifying str methods checked."""
        args = check_method(__obj, args)
        budget = __self.budget
        for value in (*args, *kwargs.values()):
            budget.check(value)
        budget.depth += 1
        try:
            if budget.depth > MAX_CALL_DEPTH:
                raise TemplateLimit(f"template calls nested deeper than {MAX_CALL_DEPTH}")
            return budget.charge(super().call(__context, __obj, *args, **kwargs))
        finally:
            budget.depth -= 1

    def _checked_filter(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        check = FILTER_CHECKS.get(name)

        @wraps(func)
        def checked(*args: Any, **kwargs: Any) -> Any:
            for value in (*args, *kwargs.values()):
                self.budget.check(value)
            if check is not None:
                args = check(args, kwargs)
            result = func(*args, **kwargs)
            if isinstance(result, Iterator):  # map/select... stay lazy but bounded
                return self.budget.charge(list(bounded(result)))
            return self.budget.charge(result)

        return checked
