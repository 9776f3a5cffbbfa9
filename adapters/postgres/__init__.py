"""The production storage: PostgreSQL through an aiopg connection pool."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiopg
import psycopg2
import psycopg2.errors
import pydantic_core
from psycopg2.extras import Json

from adapters.sql import migrations
from adapters.sql.session import Params, Row
from adapters.sql.storage import SqlStorage
from ports.storage import ConcurrentUpdate, DuplicateKey, StorageUnavailable

log = logging.getLogger(__name__)

# Any constant shared by every portal process: it names the migration lock.
_MIGRATION_LOCK = 7_351_113
_PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_KEY = re.compile(r"Key \(([^)]+)\)=")


@functools.lru_cache(maxsize=2048)  # statements are a few hundred shapes, each run often
def to_pyformat(sql: str) -> str:
    """`:name` placeholders to psycopg2's `%(name)s`; literal percent signs doubled."""
    return _PLACEHOLDER.sub(r"%(\1)s", sql.replace("%", "%%"))


def _to_sql(value: Any) -> Any:
    return Json(value, dumps=_json_text) if isinstance(value, dict | list) else value


def _json_text(value: Any) -> str:
    # Several times faster than the json module's dumps, which psycopg2 uses by default.
    return pydantic_core.to_json(value).decode()


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, psycopg2.errors.DeadlockDetected | psycopg2.errors.SerializationFailure):
        return ConcurrentUpdate(f"PostgreSQL: {exc.pgerror or exc}")
    if isinstance(exc, psycopg2.errors.UniqueViolation):
        match = _KEY.search(exc.diag.message_detail or "")
        table = exc.diag.table_name or "?"
        return DuplicateKey(f"{table}.{match[1] if match else exc.diag.constraint_name}")
    if isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError
                  | asyncio.TimeoutError | OSError):
        return StorageUnavailable(f"PostgreSQL: {exc or type(exc).__name__}")
    return exc


def _stop_if_cancelled() -> None:
    """Re-raise a cancellation that aiopg turned into an error or swallowed, so that a
    cancelled request or task really stops."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class _PostgresSession:
    dialect = "postgres"
    for_update = " FOR UPDATE"

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    async def _run(self, sql: str, params: Params | None) -> None:
        values = {key: _to_sql(value) for key, value in (params or {}).items()}
        try:
            await self._cursor.execute(to_pyformat(sql), values)
        except (TimeoutError, psycopg2.Error, OSError) as exc:
            _stop_if_cancelled()  # aiopg answers a cancelled query with QueryCanceledError
            raise _translate(exc) from exc
        _stop_if_cancelled()


    async def execute(self, sql: str, params: Params | None = None) -> int:
        await self._run(sql, params)
        return int(self._cursor.rowcount)

    async def fetch_all(self, sql: str, params: Params | None = None) -> list[Row]:
        await self._run(sql, params)
        try:
            names = [column.name for column in self._cursor.description]
            rows = await self._cursor.fetchall()
        except (TimeoutError, psycopg2.Error, OSError) as exc:
            # The server went away between the statement and its rows (a shutdown closes
            # the cursor: InterfaceError): an outage, like a failed statement.
            _stop_if_cancelled()
            raise _translate(exc) from exc
        return [dict(zip(names, row, strict=True)) for row in rows]

    async def fetch_one(self, sql: str, params: Params | None = None) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    def listed(self, name: str) -> str:
        return f"SELECT json_array_elements_text(:{name})"

    async def insert(self, table: str, columns: str, rows: list[Row], suffix: str = "") -> None:
        # The rows travel as one JSON parameter that the server reads into the table's own
        # row type: psycopg2 takes 1-5 us to quote each parameter (a hundred licenses are
        # 1,200), and a JSON text of them is made in one call.
        await self.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns}"
            f" FROM json_populate_recordset(NULL::{table}, :rows){suffix}",
            {"rows": _json_text(rows)})


async def _utc_session(conn: Any) -> None:
    async with conn.cursor() as cursor:
        await cursor.execute("SET TIME ZONE 'UTC'")


class PostgresStorage(SqlStorage):
    def __init__(self, dsn: str, pool_min: int = 1, pool_max: int = 10,
                 timeout_seconds: float = 10.0) -> None:
        self.dsn = dsn
        self._pool_min = pool_min
        self._pool_max = pool_max
        self._timeout = timeout_seconds
        self._pool: Any = None
        self._waits = 0

    async def open(self) -> None:
        try:
            self._pool = await aiopg.create_pool(
                self.dsn, minsize=self._pool_min, maxsize=self._pool_max,
                timeout=self._timeout, on_connect=_utc_session, enable_hstore=False)
        except (TimeoutError, psycopg2.Error, OSError) as exc:
            raise StorageUnavailable(f"cannot reach PostgreSQL: {exc}") from exc

    def stats(self) -> dict[str, float]:
        pool = self._pool
        size = pool.size if pool is not None else 0
        return {"pool_size": size, "pool_in_use": size - (pool.freesize if pool else 0),
                "pool_max": self._pool_max, "pool_waits": self._waits}

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            await self._pool.wait_closed()
            self._pool = None

    @asynccontextmanager
    async def _transaction(self, read_only: bool = False) -> AsyncIterator[_PostgresSession]:
        if self._pool is None:
            raise StorageUnavailable("the PostgreSQL storage is not open")
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can return a connection that
            # arrived together with a cancellation and swallow the cancellation.
            if self._pool.freesize == 0 and self._pool.size >= self._pool.maxsize:
                self._waits += 1  # every connection is out: this transaction queues
            async with asyncio.timeout(self._timeout):
                conn = await self._pool.acquire()
        except (TimeoutError, psycopg2.Error, OSError, AssertionError, RuntimeError) as exc:
            # AssertionError: aiopg's pool trips its own assertion while it replaces
            # connections the server has just closed (a restart, a failover). RuntimeError:
            # the pool is closing (the process is stopping).
            raise StorageUnavailable(f"no PostgreSQL connection: {exc or 'timed out'}") from exc
        try:
            try:
                cursor = await conn.cursor()
            except psycopg2.Error as exc:
                conn.close()  # dead since it was pooled; the pool opens a new one
                raise _translate(exc) from exc
            session = _PostgresSession(cursor)
            failed = True
            try:
                # Inside the try: a cancellation that lands on BEGIN still rolls back, so
                # the connection goes back to the pool outside any transaction.
                if not read_only:
                    await session.execute("BEGIN")
                yield session
                failed = False
            finally:
                try:
                    # A read leaves nothing to undo, unless it broke off mid-statement.
                    if not read_only or failed:
                        await cursor.execute("ROLLBACK")
                    cursor.close()
                except (psycopg2.Error, OSError):
                    log.warning("dropping a PostgreSQL connection that failed to roll back")
                    conn.close()
        finally:
            await self._pool.release(conn)

    async def pending_migrations(self) -> list[str]:
        async with self._transaction() as session:
            # Wait for a migration in progress elsewhere instead of racing its tables.
            await session.execute("SELECT pg_advisory_xact_lock_shared(:key)",
                                  {"key": _MIGRATION_LOCK})
            return [m.label for m in await migrations.pending(session)]

    async def migrate(self) -> list[str]:
        async with self._transaction() as session:
            # Several processes may start at once: the first to lock migrates, the rest
            # find nothing pending once it commits.
            await session.execute("SELECT pg_advisory_xact_lock(:key)", {"key": _MIGRATION_LOCK})
            applied = await migrations.apply_pending(session, datetime.now(UTC))
            await session.execute("COMMIT")
        return applied
