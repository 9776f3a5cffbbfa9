"""The embedded storage: one SQLite file (WAL) through aiosqlite.

One connection serves the process and a lock gives each unit of work the connection for its
whole transaction, so transactions never interleave. That keeps the embedded default simple
and correct; PostgreSQL is the adapter for several processes and real concurrency.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from adapters.sql import migrations
from adapters.sql.session import Params, Row
from adapters.sql.statements import insert_rows
from adapters.sql.storage import SqlStorage
from ports.storage import DuplicateKey, StorageUnavailable

_UNIQUE = re.compile(r"UNIQUE constraint failed: (\S+?)(?:,|$)")


def _to_sql(value: Any) -> Any:
    if isinstance(value, datetime):
        # One fixed-width UTC form, so that text comparison is time comparison.
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


def _register_types() -> None:
    sqlite3.register_converter("TIMESTAMPTZ", lambda raw: datetime.fromisoformat(raw.decode()))
    sqlite3.register_converter("DATE", lambda raw: date.fromisoformat(raw.decode()))
    sqlite3.register_converter("JSONB", json.loads)
    sqlite3.register_converter("BOOLEAN", lambda raw: raw not in (b"0", b""))


def _translate(exc: sqlite3.Error) -> Exception:
    if isinstance(exc, sqlite3.IntegrityError):
        match = _UNIQUE.search(str(exc))
        if match:
            return DuplicateKey(match[1])
        return exc
    if isinstance(exc, sqlite3.OperationalError):
        return StorageUnavailable(f"SQLite: {exc}")
    return exc


class _SqliteSession:
    # A unit of work holds the process's only connection, and SQLite lets one writer in at
    # a time: rows need no lock of their own.
    dialect = "sqlite"
    for_update = ""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params | None = None) -> int:
        try:
            cursor = await self._conn.execute(sql, _params(params))
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        rowcount = cursor.rowcount
        await cursor.close()
        return rowcount

    async def fetch_all(self, sql: str, params: Params | None = None) -> list[Row]:
        try:
            cursor = await self._conn.execute(sql, _params(params))
            rows = await cursor.fetchall()
            await cursor.close()
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        return [dict(row) for row in rows]

    async def fetch_one(self, sql: str, params: Params | None = None) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    def listed(self, name: str) -> str:
        return f"SELECT value FROM json_each(:{name})"

    async def insert(self, table: str, columns: str, rows: list[Row], suffix: str = "") -> None:
        await insert_rows(self, table, columns, rows, suffix)


def _params(params: Params | None) -> dict[str, Any]:
    return {key: _to_sql(value) for key, value in (params or {}).items()}


class SqliteStorage(SqlStorage):
    def __init__(self, path: Path, busy_timeout_ms: int = 10_000) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._waits = 0

    async def open(self) -> None:
        _register_types()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = await aiosqlite.connect(self.path, isolation_level=None,
                                           detect_types=sqlite3.PARSE_DECLTYPES)
        except (sqlite3.Error, OSError) as exc:
            raise StorageUnavailable(f"cannot open {self.path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        for pragma in ("journal_mode = WAL", "foreign_keys = ON", "synchronous = NORMAL",
                       f"busy_timeout = {self._busy_timeout_ms}"):
            await conn.execute(f"PRAGMA {pragma}")
        self._conn = conn

    def stats(self) -> dict[str, float]:
        """One connection, one unit of work at a time: the others wait."""
        return {"pool_size": 1 if self._conn else 0, "pool_in_use": int(self._lock.locked()),
                "pool_max": 1, "pool_waits": self._waits}

    async def close(self) -> None:
        if self._conn is None:
            return
        conn, self._conn = self._conn, None  # no new work from here on
        async with self._lock:  # the work already running ends first
            await conn.close()

    def _connection(self) -> aiosqlite.Connection | None:
        return self._conn

    @asynccontextmanager
    async def _transaction(self, read_only: bool = False,
                           begin: str = "BEGIN") -> AsyncIterator[_SqliteSession]:
        if self._conn is None:
            raise StorageUnavailable("the SQLite storage is not open")
        if self._lock.locked():
            self._waits += 1
        try:
            async with asyncio.timeout(self._busy_timeout_ms / 1000):
                await self._lock.acquire()
        except TimeoutError:
            raise StorageUnavailable("the SQLite database stayed busy for "
                                     f"{self._busy_timeout_ms} ms") from None
        conn = self._connection()
        if conn is None:  # closed while this waited
            self._lock.release()
            raise StorageUnavailable("the SQLite storage is closed")
        try:
            session = _SqliteSession(conn)
            # A caller cancelled during its BEGIN leaves that BEGIN to run in aiosqlite's
            # thread after the caller has gone. Calls run there in order, so a rollback
            # first (a no-op without a transaction) ends any such leftover.
            await conn.rollback()
            if not read_only:
                await session.execute(begin)
            try:
                yield session
            finally:
                if not read_only:
                    await conn.rollback()  # after a commit: a no-op
        finally:
            self._lock.release()

    async def pending_migrations(self) -> list[str]:
        async with self._transaction() as session:
            return [m.label for m in await migrations.pending(session)]

    async def migrate(self) -> list[str]:
        # IMMEDIATE takes the write lock first, so a second process waits instead of racing.
        async with self._transaction(begin="BEGIN IMMEDIATE") as session:
            applied = await migrations.apply_pending(session, datetime.now(UTC))
            await session.execute("COMMIT")
        return applied
