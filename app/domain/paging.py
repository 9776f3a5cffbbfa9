"""Keyset paging: lists are ordered by their time-ordered ids; a cursor is the last id seen."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from app.domain.errors import DomainError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class BadCursor(DomainError):
    slug = "bad-cursor"
    title = "Invalid cursor"


class HasId(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=HasId)


@dataclass(frozen=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    after: str | None = None

    @classmethod
    def from_cursor(cls, limit: int, cursor: str | None) -> PageRequest:
        return cls(limit=limit, after=decode_cursor(cursor) if cursor else None)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None

    @classmethod
    def from_rows(cls, rows: Sequence[T], request: PageRequest) -> Page[T]:
        """`rows` holds up to limit + 1 items; the extra one only says another page exists."""
        items = rows[: request.limit]
        more = len(rows) > request.limit
        return cls(items, encode_cursor(items[-1].id) if more and items else None)


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
