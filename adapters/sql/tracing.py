"""SQL spans, when traces are on (`tracing.enabled`): each statement a child span of the
request's. Made here for both databases: aiosqlite runs statements in a thread of its own,
where the sqlite3 instrumentation would lose the request's span."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from adapters.sql.session import Params, Row, SqlSession

# An OpenTelemetry tracer, set by app.tracing when traces are on; None: no spans at all.
TRACER: Any = None
MAX_STATEMENT = 2000
SYSTEMS = {"postgres": "postgresql", "sqlite": "sqlite"}


class TracedSession:
    """A session whose statements are spans."""

    def __init__(self, inner: SqlSession, tracer: Any) -> None:
        self._inner = inner
        self._tracer = tracer
        self.dialect = inner.dialect
        self.for_update = inner.for_update

    @contextmanager
    def _span(self, sql: str) -> Iterator[None]:
        from opentelemetry.trace import SpanKind, get_current_span

        parent = get_current_span()
        if parent.get_span_context().is_valid and not parent.is_recording():
            # A request not sampled: its statements would not be recorded either, and
            # making their spans costs more than many a statement. (A background job's
            # statements, in no request, are sampled on their own.)
            yield
            return
        operation = sql.lstrip().split(" ", 1)[0].upper()
        with self._tracer.start_as_current_span(
                f"{operation} {self.dialect}", kind=SpanKind.CLIENT, attributes={
                    "db.system": SYSTEMS.get(self.dialect, self.dialect),
                    "db.operation": operation, "db.statement": sql[:MAX_STATEMENT]}):
            yield

    async def execute(self, sql: str, params: Params | None = None) -> int:
        with self._span(sql):
            return await self._inner.execute(sql, params)

    async def fetch_one(self, sql: str, params: Params | None = None) -> Row | None:
        with self._span(sql):
            return await self._inner.fetch_one(sql, params)

    async def fetch_all(self, sql: str, params: Params | None = None) -> list[Row]:
        with self._span(sql):
            return await self._inner.fetch_all(sql, params)

    def listed(self, name: str) -> str:
        return self._inner.listed(name)

    async def insert(self, table: str, columns: str, rows: list[Row], suffix: str = "") -> None:
        with self._span(f"INSERT INTO {table} ({columns})"):
            await self._inner.insert(table, columns, rows, suffix)


def traced(session: SqlSession) -> SqlSession:
    return session if TRACER is None else TracedSession(session, TRACER)
