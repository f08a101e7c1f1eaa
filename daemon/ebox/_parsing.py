"""Strict-enough JSON field readers: a wrong type or a missing required field raises
:class:`MalformedResponse` naming the field path (``Message.attachments.items[2].fileName``);
unknown fields are ignored and ``null`` counts as absent for optional fields."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import structlog

from ._errors import MalformedResponse

__all__ = ["Fields", "parse_list_envelope"]

log = structlog.get_logger(__name__)

T = TypeVar("T")
BRUSSELS = ZoneInfo("Europe/Brussels")
_MISSING = object()


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


class Fields:
    """Typed access to one JSON object, remembering where it sits in the document."""

    __slots__ = ("data", "path")

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise MalformedResponse(path, f"expected an object, got {_type_name(data)}")
        self.data: dict[str, Any] = data
        self.path = path

    def _get(self, key: str, required: bool) -> Any:
        value = self.data.get(key, _MISSING)
        if value is _MISSING or value is None:
            if required:
                raise MalformedResponse(f"{self.path}.{key}", "required field is missing")
            return None
        return value

    def _fail(self, key: str, expected: str, value: object) -> MalformedResponse:
        return MalformedResponse(f"{self.path}.{key}", f"expected {expected}, got {_type_name(value)}")

    def text(self, key: str, *, required: bool = True) -> Any:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._fail(key, "a string", value)
        return value

    def boolean(self, key: str, *, required: bool = True, default: bool | None = None) -> Any:
        value = self._get(key, required)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._fail(key, "a boolean", value)
        return value

    def integer(self, key: str, *, required: bool = True) -> Any:
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise self._fail(key, "an integer", value)
        return value

    def number(self, key: str, *, required: bool = True) -> Any:
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(key, "a number", value)
        return float(value)

    def timestamp(self, key: str, *, required: bool = True) -> Any:
        value = self.text(key, required=required)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise MalformedResponse(f"{self.path}.{key}", f"not an ISO 8601 date-time: {value!r}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=BRUSSELS)

    def day(self, key: str, *, required: bool = True) -> Any:
        value = self.text(key, required=required)
        if value is None:
            return None
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            raise MalformedResponse(f"{self.path}.{key}", f"not an ISO 8601 date: {value!r}") from None

    def child(self, key: str, parser: Callable[[Any, str], T]) -> T:
        """A required nested object."""
        return parser(self._get(key, True), f"{self.path}.{key}")

    def obj(self, key: str, parser: Callable[[Any, str], T]) -> T | None:
        """An optional nested object."""
        value = self._get(key, False)
        if value is None:
            return None
        return parser(value, f"{self.path}.{key}")

    def array(self, key: str, parser: Callable[[Any, str], T], *, required: bool = False) -> tuple[T, ...]:
        value = self._get(key, required)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self._fail(key, "an array", value)
        return tuple(parser(item, f"{self.path}.{key}[{i}]") for i, item in enumerate(value))

    def texts(self, key: str) -> tuple[str, ...]:
        def one(value: Any, path: str) -> str:
            if not isinstance(value, str):
                raise MalformedResponse(path, f"expected a string, got {_type_name(value)}")
            return value

        return self.array(key, one)


def parse_list_envelope(data: Any, path: str, parser: Callable[[Any, str], T], *,
                        skip_malformed: bool = False) -> tuple[tuple[T, ...], int]:
    """``{"items": [...], "totalItems": n}``: both required by the contract; be lenient on a missing
    ``totalItems`` (use the item count) since it is only used for paging.

    With ``skip_malformed``, an item that does not parse is logged (``ebox.item.refused``, with its
    ``messageId`` when it has one and the field at fault) and left out: one bad message of a listing
    must not keep the others of its page from being stored."""
    fields = Fields(data, path)
    total = fields.integer("totalItems", required=False)
    if not skip_malformed:
        items = fields.array("items", parser, required=True)
        return items, len(items) if total is None else total
    raw = fields.array("items", lambda item, _: item, required=True)
    parsed = []
    for i, item in enumerate(raw):
        try:
            parsed.append(parser(item, f"{path}.items[{i}]"))
        except MalformedResponse as exc:
            log.warning("ebox.item.refused", item=f"{path}.items[{i}]", field=exc.field, problem=exc.problem,
                        message_id=item.get("messageId") if isinstance(item, dict) else None)
    return tuple(parsed), len(raw) if total is None else total
