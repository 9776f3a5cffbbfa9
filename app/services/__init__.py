"""Use cases, one module per capability; each takes its ports as constructor arguments."""

from __future__ import annotations

from dataclasses import dataclass

from app.services.audit_log import AuditLogService
from app.services.auth import AuthService
from app.services.cabinets import CabinetService
from app.services.catalog import CatalogService
from app.services.conversation import ConversationService
from app.services.documents import DocumentService
from app.services.downloads import DownloadService
from app.services.helpdesk_sync import HelpdeskSync
from app.services.issuing import IssuingService
from app.services.licensing import LicensingService
from app.services.limits import RateLimits
from app.services.mail import OutboxWorker
from app.services.notifications import NotificationService
from app.services.purchases import PurchaseService
from app.services.releases import ReleaseService
from app.services.reminders import ReminderService
from app.services.reports import ReportService
from app.services.subscriptions import ReportSubscriptions
from app.services.support import SupportService
from app.services.users import UserService
from ports.events import EventBus
from ports.mail import Mailer
from ports.objects import ObjectStore
from ports.storage import Storage
from ports.system import Observed


@dataclass(frozen=True)
class Services:
    """Everything the web layer and the command line call, built by the container."""

    storage: Storage
    auth: AuthService
    cabinets: CabinetService
    users: UserService
    catalog: CatalogService
    licensing: LicensingService
    purchases: PurchaseService
    documents: DocumentService
    releases: ReleaseService
    downloads: DownloadService
    audit_log: AuditLogService
    issuing: IssuingService
    notifications: NotificationService
    reminders: ReminderService
    support: SupportService
    conversation: ConversationService
    helpdesk: HelpdeskSync
    reports: ReportService
    subscriptions: ReportSubscriptions
    limits: RateLimits
    objects: ObjectStore
    events: EventBus
    mailer: Mailer
    outbox: OutboxWorker
    web_secret: bytes
    # What operators watch, by part: storage, pdf, event_bus (the outbox is above).
    observed: dict[str, Observed]
