"""Storage port: repositories and a unit of work that rolls back unless committed.

Every method that reads tenant data takes the caller's `Scope` (see app.domain.access);
an object outside the scope is reported as absent. One module per capability;
everything is importable from here.
"""

from ports.storage.audit import AuditRepository
from ports.storage.catalog import ProductRepository, ReleaseRepository
from ports.storage.errors import ConcurrentUpdate, DuplicateKey, StorageError, StorageUnavailable
from ports.storage.identity import LoginThrottleRepository, SessionRepository, UserRepository
from ports.storage.licensing import (
    Described,
    DocumentRepository,
    PurchaseEventRepository,
    TransferRepository,
)
from ports.storage.notifications import NotificationRepository
from ports.storage.organisations import CabinetRepository
from ports.storage.outbox import OutboxRepository
from ports.storage.reminders import ReminderRepository
from ports.storage.subscriptions import ReportSubscriptionRepository
from ports.storage.support import SupportDeliveryRepository, SupportRepository
from ports.storage.unit_of_work import EventLog, Prepare, Storage, UnitOfWork

__all__ = [
    "AuditRepository", "CabinetRepository", "ConcurrentUpdate", "Described", "DocumentRepository",
    "DuplicateKey", "EventLog", "LoginThrottleRepository", "NotificationRepository",
    "OutboxRepository", "Prepare", "ProductRepository", "PurchaseEventRepository",
    "ReleaseRepository", "ReminderRepository", "ReportSubscriptionRepository",
    "SessionRepository", "Storage", "StorageError",
    "StorageUnavailable", "SupportDeliveryRepository", "SupportRepository", "TransferRepository",
    "UnitOfWork", "UserRepository",
]
