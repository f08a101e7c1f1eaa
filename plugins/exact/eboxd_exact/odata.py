"""The slice of OData v2 that Exact Online speaks, shared by the client and the sandbox.

Client side: literals (``quote``, ``guid``), Exact's ``/Date(ms)/`` dates. Sandbox side: a small
``$filter`` evaluator (``eq ne ge gt le lt``, ``and``/``or``, parentheses, ``trim()``,
``substringof()``, ``'text'``, ``guid'…'``, ``datetime'…'``, numbers, ``true``/``false``) that
raises :class:`FilterError` on anything else, as Exact answers 400 to what it cannot parse.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["FilterError", "compile_filter", "from_exact_date", "guid", "quote", "to_exact_date"]

_DATE = re.compile(r"^/Date\((-?\d+)\)/$")


def quote(text: str) -> str:
    """An OData string literal: single quotes, inner quotes doubled."""
    return "'" + text.replace("'", "''") + "'"


def guid(value: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F-]{36}", value):
        raise ValueError(f"not a GUID: {value!r}")
    return f"guid'{value}'"


def to_exact_date(value: dt.datetime) -> str:
    """Exact's JSON date: ``/Date(<ms since the epoch>)/``."""
    return f"/Date({int(value.timestamp() * 1000)})/"


def from_exact_date(text: str | None) -> dt.datetime | None:
    match = _DATE.match(text or "")
    return dt.datetime.fromtimestamp(int(match.group(1)) / 1000, dt.UTC) if match else None


class FilterError(ValueError):
    """A ``$filter`` the sandbox (like Exact) cannot parse."""


_TOKEN = re.compile(r"\s*(guid'[^']*'|datetime'[^']*'|'(?:[^']|'')*'|\(|\)|,|-?\d+(?:\.\d+)?|[A-Za-z_][A-Za-z0-9_/]*)")
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "ge": lambda a, b: a is not None and a >= b,
    "gt": lambda a, b: a is not None and a > b, "le": lambda a, b: a is not None and a <= b,
    "lt": lambda a, b: a is not None and a < b,
}
Row = Mapping[str, Any]
Predicate = Callable[[Row], bool]
Operand = Callable[[Row], Any]


def _tokens(text: str) -> list[str]:
    out, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise FilterError(f"cannot parse $filter near {text[position:position + 20]!r}")
        out.append(match.group(1))
        position = match.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token.lower() != expected):
            raise FilterError(f"$filter: expected {expected or 'more'}, got {token!r}")
        self.at += 1
        return token

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while (self.peek() or "").lower() == "or":
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.comparison()]
        while (self.peek() or "").lower() == "and":
            self.take()
            parts.append(self.comparison())
        return parts[0] if len(parts) == 1 else (lambda row: all(p(row) for p in parts))

    def comparison(self) -> Predicate:
        if self.peek() == "(":
            self.take()
            inner = self.disjunction()
            self.take(")")
            return inner
        left = self.operand()
        operator = (self.peek() or "").lower()
        if operator not in _OPERATORS:
            return lambda row: bool(left(row))  # substringof(...) alone
        self.take()
        right = self.operand()
        compare = _OPERATORS[operator]
        return lambda row: compare(left(row), right(row))

    def operand(self) -> Operand:
        token = self.take()
        lowered = token.lower()
        if lowered in ("trim", "substringof", "tolower"):
            self.take("(")
            first = self.operand()
            if lowered == "substringof":
                self.take(",")
                second = self.operand()
                self.take(")")
                return lambda row: str(first(row) or "").lower() in str(second(row) or "").lower()
            self.take(")")
            if lowered == "trim":
                return lambda row: str(first(row) or "").strip()
            return lambda row: str(first(row) or "").lower()
        value = _literal(token)
        if value is not _FIELD:
            return lambda _row: value
        return lambda row: _comparable(row.get(token))


_FIELD = object()


def _literal(token: str) -> Any:  # noqa: PLR0911 - one return per literal kind
    if token.startswith("'"):
        return token[1:-1].replace("''", "'")
    if token.lower().startswith("guid'"):
        return token[5:-1].lower()
    if token.lower().startswith("datetime'"):
        try:
            parsed = dt.datetime.fromisoformat(token[9:-1])
        except ValueError:
            raise FilterError(f"$filter: not a datetime: {token}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    if re.fullmatch(r"-?\d+(?:\.\d+)?", token):
        return float(token) if "." in token else int(token)
    if token.lower() in ("true", "false"):
        return token.lower() == "true"
    if token.lower() == "null":
        return None
    if token in ("(", ")", ","):
        raise FilterError(f"$filter: unexpected {token!r}")
    return _FIELD


def _comparable(value: Any) -> Any:
    return value.lower() if isinstance(value, str) and re.fullmatch(r"[0-9a-fA-F-]{36}", value) else value


def compile_filter(text: str) -> Predicate:
    """A predicate over entity rows (``dict``) for an OData ``$filter``; :class:`FilterError` if unparsable."""
    parser = _Parser(text)
    predicate = parser.disjunction()
    if parser.peek() is not None:
        raise FilterError(f"$filter: unexpected {parser.peek()!r}")
    return predicate
