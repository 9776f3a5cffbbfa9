"""Statement fragments every SQL repository builds with: IN lists, many-row inserts, the
access rule's scope, text searches, pages (by key or by number) and queues' backlogs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from adapters.sql.session import Row, SqlSession
from app.domain.access import Scope
from app.domain.paging import PageRequest

# Rows (or list items) per statement: a few thousand parameters at most, far below SQLite's
# 32,766, and statements PostgreSQL parses quickly.
BATCH_ROWS = 500


def in_list(prefix: str, values: list[Any]) -> tuple[str, dict[str, Any]]:
    """`:p0, :p1, ...` for an IN (...) list, and the parameters."""
    names = {f"{prefix}{i}": value for i, value in enumerate(values)}
    return ", ".join(":" + name for name in names), names


async def insert_rows(db: SqlSession, table: str, columns: str, rows: list[dict[str, Any]],
                      suffix: str = "") -> None:
    """One INSERT of many rows; each row a dict with every one of `columns`."""
    names = [column.strip() for column in columns.split(",")]
    params: dict[str, Any] = {}
    groups = []
    for i, row in enumerate(rows):
        groups.append("(" + ", ".join(f":{name}_{i}" for name in names) + ")")
        params.update({f"{name}_{i}": row[name] for name in names})
    await db.execute(f"INSERT INTO {table} ({columns}) VALUES {', '.join(groups)}{suffix}",
                     params)


class Joined:
    """A joined table's columns in a row apart from the main table's: `c.id AS c_id, ...`
    for alias `c` in the statement, and back to their own names in the row read."""

    def __init__(self, columns: str, alias: str) -> None:
        names = [part.strip().split(".")[-1] for part in columns.split(",")]
        self.select = ", ".join(f"{alias}.{name} AS {alias}_{name}" for name in names)
        self.id = f"{alias}_id"
        self._keys = [(f"{alias}_{name}", name) for name in names]

    def of(self, row: Row) -> Row:
        return {name: row[key] for key, name in self._keys}


def scope_filter(scope: Scope, path_column: str) -> tuple[str, dict[str, Any]]:
    """The SQL form of the access rule's scope: a prefix match on the materialised path (or
    the path itself, for one cabinet)."""
    if scope.path_prefix is None:
        return "1 = 1", {}
    if scope.exact:
        return f"{path_column} = :scope_path", {"scope_path": scope.path_prefix}
    return f"{path_column} LIKE :scope_prefix", {"scope_prefix": scope.path_prefix + "%"}


def page_filter(page: PageRequest, id_column: str) -> tuple[str, dict[str, Any]]:
    if page.after is None:
        return "1 = 1", {"page_limit": page.limit + 1}
    return f"{id_column} > :page_after", {"page_after": page.after, "page_limit": page.limit + 1}


def paged(page: PageRequest, id_column: str,
          sorts: Mapping[str, tuple[str, ...]]) -> tuple[str, str, dict[str, Any]]:
    """(a WHERE condition, `ORDER BY ... LIMIT ...`, their parameters) for a page by key, or
    for a numbered one sorted by `sorts[page.sort.key]`'s expressions, ties broken by id."""
    if page.sort is None:
        where, params = page_filter(page, id_column)
        return where, f" ORDER BY {id_column} LIMIT :page_limit", params
    direction = " DESC" if page.sort.descending else ""
    order = ", ".join(f"{expression}{direction}"
                      for expression in (*sorts[page.sort.key], id_column))
    return "1 = 1", f" ORDER BY {order} LIMIT :page_limit OFFSET :page_offset", {
        "page_limit": page.limit + 1, "page_offset": page.offset}


def nulls_last(column: str) -> tuple[str, str]:
    """Sort expressions that put NULL (no end: perpetual) after every value, as both
    databases read them (PostgreSQL sorts NULL last, SQLite first)."""
    return f"({column} IS NULL)", column


def escaped(text: str) -> str:
    """`text` as plain characters in a LIKE pattern with ESCAPE '!'."""
    return "".join("!" + c if c in "!%_" else c for c in text)


def contains(text: str) -> str:
    """A LIKE pattern (ESCAPE '!') for `text` anywhere, lower-cased: compare it with
    LOWER(column)."""
    return f"%{escaped(text.strip().lower())}%"


async def backlog(db: SqlSession, table: str) -> tuple[int, datetime | None]:
    """A queue's (the outbox's, the helpdesk deliveries'): how many of its rows are pending,
    and when the oldest of them was queued."""
    counted = await db.fetch_one(f"SELECT COUNT(*) AS n FROM {table} WHERE status = 'pending'")
    # Not MIN(): an aggregate comes back from SQLite as text, a column as its type.
    first = await db.fetch_one(f"SELECT created_at FROM {table} WHERE status = 'pending'"
                               " ORDER BY created_at LIMIT 1")
    return (int(counted["n"]) if counted else 0), (first["created_at"] if first else None)
