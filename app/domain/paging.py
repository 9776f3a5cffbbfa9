"""Paging. The API pages by key: lists are ordered by their time-ordered ids and a cursor is
the last id seen. The portal's pages, which people sort by a column and jump through, page by
number: a `Sort` and an offset, with a count of the whole list beside them."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from app.domain.errors import DomainError, Invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# What of a search text is used; longer is cut (nobody types 200 characters of a name).
MAX_SEARCH = 200
_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class BadCursor(DomainError):
    slug = "bad-cursor"
    title = "Invalid cursor"


class HasId(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=HasId)


@dataclass(frozen=True)
class Sort:
    """A column the list offers to sort by (its own names), and the direction; ties are
    broken by id, so a page never repeats or skips a row."""

    key: str
    descending: bool = False


def check_sort(sort: Sort, offered: tuple[str, ...]) -> None:
    if sort.key not in offered:
        raise Invalid(f"A list sorts by {', '.join(offered)}; not by “{sort.key}”.",
                      field="sort")


@dataclass(frozen=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    after: str | None = None
    # A numbered page: `after` is then not used.
    sort: Sort | None = None
    offset: int = 0

    @classmethod
    def numbered(cls, limit: int, number: int, sort: Sort) -> PageRequest:
        """Page `number` (from 1) of `limit` rows in `sort`'s order."""
        return cls(limit=limit, sort=sort, offset=(max(number, 1) - 1) * limit)

    @classmethod
    def from_cursor(cls, limit: int, cursor: str | None) -> PageRequest:
        return cls(limit=limit, after=decode_cursor(cursor) if cursor else None)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None
    # A numbered page's: how many the whole list holds.
    total: int | None = None

    @classmethod
    def from_rows(cls, rows: Sequence[T], request: PageRequest) -> Page[T]:
        """`rows` holds up to limit + 1 items; the extra one only says another page exists."""
        items = rows[: request.limit]
        more = len(rows) > request.limit
        return cls(items, encode_cursor(items[-1].id) if more and items else None)

    @classmethod
    def numbered(cls, rows: Sequence[T], request: PageRequest, total: int) -> Page[T]:
        return cls(rows[: request.limit], None, total)


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    if not _ID.match(raw):
        raise BadCursor("The cursor is not one this API handed out.", field="cursor")
    return raw
