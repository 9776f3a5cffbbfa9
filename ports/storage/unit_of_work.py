"""The unit of work: every repository over one transaction, and the events it records."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from app.domain.events import DomainEvent
from app.domain.licensing import Certificate, License
from ports.storage.audit import AuditRepository
from ports.storage.catalog import ProductRepository, ReleaseRepository
from ports.storage.identity import LoginThrottleRepository, SessionRepository, UserRepository
from ports.storage.licensing import DocumentRepository, PurchaseEventRepository, TransferRepository
from ports.storage.notifications import NotificationRepository
from ports.storage.organisations import CabinetRepository
from ports.storage.outbox import OutboxRepository
from ports.storage.reminders import ReminderRepository
from ports.storage.subscriptions import ReportSubscriptionRepository
from ports.storage.support import SupportDeliveryRepository, SupportRepository

Prepare = Callable[["UnitOfWork", list[DomainEvent]], Awaitable[None]]


class EventLog:
    """The events of one unit of work. Just before it commits, what they cause is written
    in its transaction (`prepare`: the notifications they make); once it has committed,
    they wait to be published. Those recorded after the last commit go with the rollback."""

    def __init__(self, prepare: Prepare | None = None) -> None:
        self._prepare = prepare
        self._recorded: list[DomainEvent] = []
        self._committed: list[DomainEvent] = []

    def record(self, *events: DomainEvent) -> None:
        self._recorded.extend(events)

    @property
    def recorded(self) -> tuple[DomainEvent, ...]:
        """Recorded and not committed yet."""
        return tuple(self._recorded)

    @property
    def committed(self) -> tuple[DomainEvent, ...]:
        return tuple(self._committed)

    async def commit(self, uow: UnitOfWork, commit: Callable[[], Awaitable[None]]) -> None:
        """For a storage adapter's `commit`: prepare what was recorded (and what preparing
        records), then `commit`, then keep the events for publishing."""
        prepared = 0
        while prepared < len(self._recorded):
            fresh = self._recorded[prepared:]
            prepared = len(self._recorded)
            if self._prepare is not None:
                await self._prepare(uow, fresh)
        await commit()
        self._committed += self._recorded
        self._recorded = []


class UnitOfWork(Protocol):
    @property
    def cabinets(self) -> CabinetRepository: ...
    @property
    def products(self) -> ProductRepository: ...
    @property
    def licenses(self) -> DocumentRepository[License]: ...
    @property
    def certificates(self) -> DocumentRepository[Certificate]: ...
    @property
    def transfers(self) -> TransferRepository: ...
    @property
    def purchases(self) -> PurchaseEventRepository: ...
    @property
    def releases(self) -> ReleaseRepository: ...
    @property
    def notifications(self) -> NotificationRepository: ...
    @property
    def outbox(self) -> OutboxRepository: ...
    @property
    def reminders(self) -> ReminderRepository: ...
    @property
    def users(self) -> UserRepository: ...
    @property
    def sessions(self) -> SessionRepository: ...
    @property
    def audit(self) -> AuditRepository: ...
    @property
    def login_throttle(self) -> LoginThrottleRepository: ...
    @property
    def support(self) -> SupportRepository: ...
    @property
    def support_deliveries(self) -> SupportDeliveryRepository: ...
    @property
    def report_subscriptions(self) -> ReportSubscriptionRepository: ...

    @property
    def events(self) -> EventLog:
        """What this unit of work records happened; see EventLog."""

    async def try_lock(self, name: str) -> bool:
        """Take the lock of this name until the transaction ends, if no other transaction
        holds it; False if one does. For work that one process at a time should do."""

    async def commit(self) -> None:
        """Make the work durable, through `events.commit`: what the recorded events cause
        is written first, in this transaction. Leaving the context without it rolls
        everything back, events included."""


class Storage(Protocol):
    def unit_of_work(self, events: EventLog | None = None, *, read_only: bool = False
                     ) -> AbstractAsyncContextManager[UnitOfWork]:
        """A transaction recording its events on `events` (a new log if None);
        StorageUnavailable when no connection can be had in time. `read_only`: no
        transaction at all (each statement reads what is committed when it runs), for use
        cases that only read; such a unit of work cannot commit."""

    async def ping(self) -> None:
        """Raise StorageUnavailable unless the database answers a trivial query."""

    async def pending_migrations(self) -> list[str]: ...

    async def migrate(self) -> list[str]:
        """Apply pending migrations in order, each once even with concurrent callers;
        the names of those applied."""
