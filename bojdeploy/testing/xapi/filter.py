"""The get_all_records_where expression language (xapi's db_filter_lex.mll / db_filter_parse.mly).

    expr  := expr or expr | expr and expr | not expr | ( expr ) | true | false | value = value
    value := "literal" | field "db_field_name"

Values compare as xapi's database strings: bools are "true"/"false", ints decimal, and
namespaced fields use `__` (`field "name__label"`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bojdeploy.testing.xapi import schema
from bojdeploy.testing.xapi.faults import XapiError

Predicate = Callable[[str, dict[str, Any]], bool]
_TOKEN = re.compile(r'\s*(?:(\()|(\))|(=)|"([^"]*)"|([A-Za-z_]+))')
_KEYWORDS = {"field", "and", "or", "not", "true", "false"}


class _ParseError(Exception):
    """The expression does not follow the grammar."""


def _tokens(text: str) -> list[tuple[str, str]]:
    """Split an expression into (kind, text) tokens: punctuation, string literals, keywords."""
    tokens, pos = [], 0
    while text[pos:].strip():
        match = _TOKEN.match(text, pos)
        if not match or (match.group(5) and match.group(5) not in _KEYWORDS):
            raise _ParseError("lexing: empty token")
        lparen, rparen, eq, literal, word = match.groups()
        kind = "lit" if literal is not None else (lparen or rparen or eq or word)
        tokens.append((kind, literal or ""))
        pos = match.end()
    return tokens


def db_string(value: Any) -> str:
    """A field value as xapi's database stores it (what filter literals are compared with)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y%m%dT%H:%M:%SZ")
    if isinstance(value, dict):
        return "(" + " ".join(f"('{k}' '{v}')" for k, v in value.items()) + ")"
    if isinstance(value, list):
        return "(" + " ".join(f"'{v}'" for v in value) + ")"
    return str(value)


class _Parser:
    """Recursive descent over the tokens: `or` binds loosest, then `and`, then `not`."""

    def __init__(self, cls: str, tokens: list[tuple[str, str]]) -> None:
        self.columns = {schema.db_name(cls, f): f for f in schema.FIELDS[cls]}
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def take(self, kind: str) -> str:
        if self.peek() != kind:
            raise _ParseError("Parsing.Parse_error")
        self.pos += 1
        return self.tokens[self.pos - 1][1]

    def parse(self) -> Predicate:
        predicate = self.disjunction()
        if self.peek() is not None:
            raise _ParseError("Parsing.Parse_error")
        return predicate

    def disjunction(self) -> Predicate:
        left = self.conjunction()
        while self.peek() == "or":
            self.take("or")
            left = _either(left, self.conjunction())
        return left

    def conjunction(self) -> Predicate:
        left = self.negation()
        while self.peek() == "and":
            self.take("and")
            left = _both(left, self.negation())
        return left

    def negation(self) -> Predicate:
        kind = self.peek()
        if kind == "not":
            self.take("not")
            inner = self.negation()
            return lambda ref, record: not inner(ref, record)
        if kind == "(":
            self.take("(")
            inner = self.disjunction()
            self.take(")")
            return inner
        if kind in ("true", "false"):
            self.take(kind)
            constant = kind == "true"
            return lambda ref, record: constant
        left = self.value()
        self.take("=")
        right = self.value()
        return lambda ref, record: left(ref, record) == right(ref, record)

    def value(self) -> Callable[[str, dict[str, Any]], str]:
        if self.peek() == "field":
            self.take("field")
            return self.column(self.take("lit"))
        literal = self.take("lit")
        return lambda ref, record: literal

    def column(self, name: str) -> Callable[[str, dict[str, Any]], str]:
        field = self.columns.get(name)

        def read(ref: str, record: dict[str, Any]) -> str:
            if field is None:
                raise XapiError("INTERNAL_ERROR", "missing field", name, "")
            return db_string(record[field])

        return read


def _either(left: Predicate, right: Predicate) -> Predicate:
    return lambda ref, record: left(ref, record) or right(ref, record)


def _both(left: Predicate, right: Predicate) -> Predicate:
    return lambda ref, record: left(ref, record) and right(ref, record)


def compile_where(cls: str, expression: str) -> Predicate:
    """A predicate over (ref, record) of `cls`; INVALID_VALUE [expr, error] when malformed."""
    try:
        return _Parser(cls, _tokens(expression)).parse()
    except _ParseError as e:
        raise XapiError("INVALID_VALUE", expression, str(e)) from None
