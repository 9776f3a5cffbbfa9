"""Units of work as the use cases see them, and what every use case is built with.

A use case records events on its unit of work (`uow.events.record(...)`) and commits. What
the events cause is written in the same transaction just before it commits (the
notifications and their e-mail, see Notifier.prepare); the events are published once it
has committed, and never when it rolls back. No use case publishes by hand.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.services.audit import AuditTrail
from ports.events import EventPublisher
from ports.storage import EventLog, Prepare, Storage, UnitOfWork
from ports.system import Clock, IdGenerator


class Transactions:
    def __init__(self, storage: Storage, publisher: EventPublisher,
                 prepare: Prepare | None = None) -> None:
        self._storage = storage
        self._publisher = publisher
        self._prepare = prepare

    @asynccontextmanager
    async def __call__(self, *, read_only: bool = False) -> AsyncIterator[UnitOfWork]:
        """`read_only` for a use case that only reads: no transaction around it."""
        events = EventLog(self._prepare)
        try:
            async with self._storage.unit_of_work(events, read_only=read_only) as uow:
                yield uow
        finally:
            # Also when the use case fails after committing: what it committed happened.
            for event in events.committed:
                await self._publisher.publish(event)


class UseCases:
    """The base of every service: units of work, the time, new ids and the audit trail."""

    def __init__(self, work: Transactions, clock: Clock, ids: IdGenerator) -> None:
        self._work = work
        self._clock = clock
        self._ids = ids
        self._audit = AuditTrail(clock, ids)
