"""The whole core on fakes: every service wired as the container wires it, over fake ports,
with a small organisation tree and a product to test the use cases on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from adapters.builtin_helpdesk import BuiltinHelpdesk
from app.config import PROJECT_ROOT
from app.domain.cabinets import Cabinet, CabinetKind
from app.domain.licensing import Certificate, DocumentKind, License
from app.domain.products import Product
from app.domain.reminders import ReminderPolicy
from app.domain.roles import Role
from app.domain.support import ResponseTargets, SlaPolicy
from app.domain.users import SYSTEM, Principal, User
from app.services.auth import AuthPolicy, AuthService
from app.services.cabinets import CabinetService
from app.services.catalog import CatalogService, ProductDraft
from app.services.conversation import ConversationService
from app.services.documents import DocumentService, PrintPolicy
from app.services.downloads import DownloadService
from app.services.helpdesk_sync import HelpdeskSync, SyncPolicy
from app.services.licensing import LicensingService
from app.services.mail import EmailComposer, MailPolicy, OutboxPolicy, OutboxWorker
from app.services.notifications import NotificationService
from app.services.notifier import Notifier
from app.services.purchases import FeedPolicy, PurchaseService
from app.services.releases import ReleaseService
from app.services.reminders import ReminderService
from app.services.reports import ReportPolicy, ReportService
from app.services.subscriptions import ReportSubscriptions, SubscriptionPolicy
from app.services.support import SupportPolicy, SupportService
from app.services.users import UserPolicy, UserService
from app.services.work import Transactions
from ports.helpdesk import Helpdesk
from tests.fakes import (
    FakeBlobCache,
    FakeClock,
    FakeHelpdesk,
    FakeIds,
    FakeLicenseSigner,
    FakeMailer,
    FakeObjectStore,
    FakePasswordHasher,
    FakeRenderer,
    FakeSpreadsheets,
    FakeStorage,
    FakeTokenCodec,
    RecordingEventBus,
)

PASSWORD = "a long enough password"
FEED_SECRET = "feed-secret"
AUTH = AuthPolicy(access_ttl=900, refresh_ttl=3600, absolute_ttl=7200, throttle_window=900,
                  max_account_failures=3, max_address_failures=10, refresh_grace=10)


@dataclass
class Core:
    storage: FakeStorage = field(default_factory=FakeStorage)
    clock: FakeClock = field(default_factory=FakeClock)
    ids: FakeIds = field(default_factory=FakeIds)
    bus: RecordingEventBus = field(default_factory=RecordingEventBus)
    objects: FakeObjectStore = field(default_factory=FakeObjectStore)
    mailer: FakeMailer = field(default_factory=FakeMailer)
    renderer: FakeRenderer = field(default_factory=FakeRenderer)
    # None: the portal's own helpdesk.
    helpdesk: FakeHelpdesk | None = None

    def __post_init__(self) -> None:
        self.composer = EmailComposer(MailPolicy(
            sender="portal@portal.example", base_url="https://portal.example", brand="Acme",
            templates=PROJECT_ROOT / "templates"))
        self.notifier = Notifier(self.clock, self.ids, self.composer)
        work = Transactions(self.storage, self.bus, self.notifier.prepare)
        basics = (work, self.clock, self.ids)
        hasher = FakePasswordHasher()
        self.auth = AuthService(*basics, hasher, FakeTokenCodec(self.clock), AUTH)
        self.cabinets = CabinetService(*basics)
        self.users = UserService(*basics, hasher, UserPolicy(
            password_min_length=10, password_token_ttl=3600,
            base_url="https://portal.example"), self.composer)
        self.catalog = CatalogService(*basics)
        self.licensing = LicensingService(*basics)
        self.purchases = PurchaseService(*basics, FeedPolicy(FEED_SECRET, 300))
        self.releases = ReleaseService(*basics, self.objects)
        self.downloads = DownloadService(*basics, self.objects, presign_ttl=60)
        self.notifications = NotificationService(*basics, self.notifier)
        self.reminders = ReminderService(work, self.clock, self.notifier,
                                         ReminderPolicy((30, 7, 1)))
        self.documents = DocumentService(self.licensing, self.renderer, FakeBlobCache(),
                                         FakeLicenseSigner(), self.clock,
                                         PrintPolicy("Acme", "https://portal.example"))
        support_policy = SupportPolicy(
            sla=SlaPolicy({"premium": ResponseTargets(timedelta(hours=4), timedelta(days=2))},
                          ResponseTargets(timedelta(days=1), timedelta(days=5))),
            bucket="support", max_attachment_bytes=10_000,
            attachment_types=frozenset({"txt", "log", "png", "pdf"}))
        desk: Helpdesk = self.helpdesk or BuiltinHelpdesk(self.storage)
        kit = (*basics, self.objects, desk, support_policy)
        self.support = SupportService(*kit)
        self.conversation = ConversationService(*kit)
        self.sync = HelpdeskSync(*kit, SyncPolicy(max_attempts=3, feed_secret=FEED_SECRET))
        self.spreadsheets = FakeSpreadsheets()
        self.reports = ReportService(*basics, self.licensing, self.support, self.renderer,
                                     self.spreadsheets, ReportPolicy("Acme", 100, 30))
        self.subscriptions = ReportSubscriptions(
            *basics, self.reports, self.composer,
            SubscriptionPolicy(b"link secret", timedelta(days=7), "https://portal.example"))
        self.outbox = OutboxWorker(self.storage, self.mailer, self.clock,
                                   "portal@portal.example", OutboxPolicy(max_attempts=3))

    async def tree(self) -> Tree:
        """customer P ─ C (own) ─ G (child); P ─ S (sibling); F (foreign); vendor V."""
        async def cabinet(name: str, parent: Cabinet | None = None,
                          kind: CabinetKind = CabinetKind.CUSTOMER) -> Cabinet:
            return await self.cabinets.create(SYSTEM, name, kind, parent.id if parent else None)

        parent = await cabinet("Parent")
        own = await cabinet("Acme", parent)
        tree = Tree(vendor=await cabinet("Vendor", kind=CabinetKind.VENDOR), parent=parent,
                    own=own, child=await cabinet("Acme Labs", own),
                    sibling=await cabinet("Sibling", parent), foreign=await cabinet("Globex"))
        tree.product = await self.catalog.create(SYSTEM, ProductDraft(
            code="dbguard", name="DB Guard", bucket="releases"))
        for role in Role:
            home = tree.vendor if role.is_staff else own
            user = await self.users.create_with_password(
                SYSTEM, home.id, f"{role.value}@example.test", role.value, role, PASSWORD)
            tree.users[role] = user
            tree.actors[role] = Principal.of(user, home)
        return tree

    async def document(self, kind: DocumentKind, cabinet: Cabinet, product: Product, *,
                       valid_to: date | None = date(2027, 6, 30),
                       valid_from: date = date(2026, 1, 1)) -> License | Certificate:
        """A license or certificate straight into the fake storage."""
        now = self.clock.now()
        common: dict[str, Any] = {
            "id": self.ids.new_id(), "number": f"{kind.prefix}-2026-{self.ids.count:06d}",
            "product_id": product.id, "cabinet_id": cabinet.id, "valid_from": valid_from,
            "valid_to": valid_to, "revoked_at": None, "purchase_item": None,
            "created_at": now, "updated_at": now}
        document: License | Certificate
        if kind is DocumentKind.LICENSE:
            document = License(**common, edition="Enterprise", seats=10)
            self.storage.state.licenses[document.id] = document
        else:
            document = Certificate(**common, level="premium")
            self.storage.state.certificates[document.id] = document
        return document

    async def put(self, bucket: str, key: str, data: bytes) -> None:
        async def once() -> AsyncIterator[bytes]:
            yield data
        await self.objects.put(bucket, key, once())

    def told(self, user: User) -> list[str]:
        """The titles of a user's notifications, oldest first."""
        return [n.title for n in sorted(self.storage.state.notifications, key=lambda n: n.seq)
                if n.user_id == user.id]


@dataclass
class Tree:
    vendor: Cabinet
    parent: Cabinet
    own: Cabinet
    child: Cabinet
    sibling: Cabinet
    foreign: Cabinet
    product: Product = field(init=False)
    users: dict[Role, User] = field(default_factory=dict)
    actors: dict[Role, Principal] = field(default_factory=dict)
