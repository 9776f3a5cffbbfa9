from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

Row = dict[str, Any]
Params = Mapping[str, Any]


class SqlSession(Protocol):
    """One connection inside one transaction."""

    # "sqlite" or "postgres": picks a migration's dialect variant where one exists.
    dialect: str
    # Appended to a SELECT to lock its rows until the transaction ends: " FOR UPDATE" where
    # the database locks rows, "" where a transaction already excludes every other writer.
    for_update: str

    async def execute(self, sql: str, params: Params | None = None) -> int:
        """Run a statement; the number of rows it touched."""

    async def fetch_one(self, sql: str, params: Params | None = None) -> Row | None: ...

    async def fetch_all(self, sql: str, params: Params | None = None) -> list[Row]: ...

    def listed(self, name: str) -> str:
        """A subquery of the texts in the list parameter `name`, for `x IN (...)`: one
        parameter however long the list (a parameter per item costs each its quoting)."""

    async def insert(self, table: str, columns: str, rows: list[Row], suffix: str = "") -> None:
        """One INSERT of many rows, each a dict with every one of `columns` (a comma-separated
        list); `suffix` follows the statement (an ON CONFLICT clause)."""
