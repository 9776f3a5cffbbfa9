"""What both SQL adapters offer above a transaction of their own driver."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from adapters.sql.session import SqlSession
from adapters.sql.tracing import traced
from adapters.sql.unit_of_work import SqlUnitOfWork
from ports.storage import EventLog


class SqlStorage(ABC):
    @abstractmethod
    def _transaction(self, read_only: bool = False) -> AbstractAsyncContextManager[SqlSession]:
        """One connection inside a transaction that is rolled back on leaving (a commit
        before that makes the work durable); `read_only`: no transaction, no BEGIN and no
        ROLLBACK (two round trips of a read's five)."""

    @asynccontextmanager
    async def unit_of_work(self, events: EventLog | None = None, *, read_only: bool = False
                           ) -> AsyncIterator[SqlUnitOfWork]:
        async with self._transaction(read_only) as session:
            yield SqlUnitOfWork(traced(session), events, read_only=read_only)

    async def ping(self) -> None:
        async with self._transaction() as session:
            await session.fetch_one("SELECT 1 AS ok")
