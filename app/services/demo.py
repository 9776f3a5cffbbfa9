"""Demo data for a first look: a vendor, two customers with a child each, a user per role,
two products, licenses and certificates bought through the purchases feed, and a few
releases of each product put into the object store and registered by a scan.

Running it again changes nothing but the demo users' passwords, which it sets back to the
printed ones.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from app.domain.cabinets import Cabinet, CabinetKind
from app.domain.errors import Conflict
from app.domain.licensing import DocumentKind
from app.domain.paging import PageRequest
from app.domain.products import Product
from app.domain.purchases import PurchaseCustomer, PurchaseEvent, PurchaseItem, PurchaseType
from app.domain.roles import Role
from app.domain.support import IssueChanges, IssueFilter, IssueStatus, Priority
from app.domain.users import SYSTEM, Principal
from app.services import Services
from app.services.catalog import ProductDraft
from app.services.support import RequestDraft
from ports.objects import ObjectNotFound, ObjectStore, ObjectStoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoAccount:
    email: str
    password: str
    role: Role
    name: str
    cabinet: str


# (billing id, name, kind, parent billing id)
CABINETS = [
    ("DEMO-VENDOR", "Horns & Hooves Ltd.", CabinetKind.VENDOR, None),
    ("DEMO-ACME", "Acme LLC", CabinetKind.CUSTOMER, None),
    ("DEMO-ACME-LABS", "Acme Labs", CabinetKind.CUSTOMER, "DEMO-ACME"),
    ("DEMO-GLOBEX", "Globex Corporation", CabinetKind.CUSTOMER, None),
    ("DEMO-GLOBEX-EU", "Globex Europe", CabinetKind.CUSTOMER, "DEMO-GLOBEX"),
]

# (e-mail, name, role, cabinet billing id, password)
USERS = [
    ("admin@hornsandhooves.example", "Hanna Horn", Role.STAFF_ADMIN, "DEMO-VENDOR",
     "demo-staff-admin"),
    ("support@hornsandhooves.example", "Sam Hoof", Role.STAFF, "DEMO-VENDOR", "demo-staff-user"),
    ("admin@acme.example", "Alice Admin", Role.CUSTOMER_ADMIN, "DEMO-ACME", "demo-acme-admin"),
    ("user@acme.example", "Bob User", Role.CUSTOMER_USER, "DEMO-ACME", "demo-acme-user"),
    ("admin@globex.example", "Grace Globex", Role.CUSTOMER_ADMIN, "DEMO-GLOBEX",
     "demo-globex-admin"),
]


PRODUCTS = [
    ProductDraft(code="dbguard", name="DB Guard", bucket="releases",
                 description="Database activity monitoring and firewall.",
                 parameters={"editions": ["Standard", "Enterprise"],
                             "platforms": ["Linux x86-64", "Windows Server"]}),
    ProductDraft(code="vaultkeeper", name="VaultKeeper", bucket="releases",
                 description="Secrets management for on-premises clusters.",
                 parameters={"editions": ["Team", "Enterprise"]}),
]


# The billing contacts the billing system names; none of them has an account yet, so each
# organisation's page offers to invite its contact.
CONTACTS = {"DEMO-ACME": "billing@acme.example", "DEMO-GLOBEX": "accounts@globex.example"}


def _purchases(today: date) -> list[PurchaseEvent]:
    """Licenses and certificates in every state a customer meets: fresh, expiring within
    weeks, expired, perpetual. Dates follow today, so the demo always looks alive."""
    def event(event_id: str, customer: str, name: str, parent: str | None,
              *items: PurchaseItem) -> PurchaseEvent:
        return PurchaseEvent(event_id, PurchaseType.COMPLETED,
                             datetime.combine(today, datetime.min.time(), UTC),
                             PurchaseCustomer(customer, name, parent, CONTACTS.get(customer)),
                             items)

    year = timedelta(days=365)
    return [
        event("demo-acme-1", "DEMO-ACME", "Acme LLC", None,
              PurchaseItem("DEMO-ACME-1-1", DocumentKind.LICENSE, "dbguard", "Enterprise", 50,
                           valid_from=today - year / 2, valid_to=today + year / 2),
              PurchaseItem("DEMO-ACME-1-2", DocumentKind.CERTIFICATE, "dbguard", level="premium",
                           valid_from=today - year / 2, valid_to=today + timedelta(days=20),
                           license_external_id="DEMO-ACME-1-1"),
              PurchaseItem("DEMO-ACME-1-3", DocumentKind.LICENSE, "vaultkeeper", "Team", 10,
                           valid_from=today - year)),
        event("demo-acme-labs-1", "DEMO-ACME-LABS", "Acme Labs", "DEMO-ACME",
              PurchaseItem("DEMO-ACME-LABS-1-1", DocumentKind.LICENSE, "dbguard", "Standard", 5,
                           valid_from=today - year - timedelta(days=30),
                           valid_to=today - timedelta(days=30))),
        event("demo-globex-1", "DEMO-GLOBEX", "Globex Corporation", None,
              PurchaseItem("DEMO-GLOBEX-1-1", DocumentKind.LICENSE, "vaultkeeper", "Enterprise",
                           200, valid_from=today - year / 4, valid_to=today + year),
              PurchaseItem("DEMO-GLOBEX-1-2", DocumentKind.CERTIFICATE, "vaultkeeper",
                           level="standard", valid_from=today - year / 4,
                           valid_to=today + year)),
    ]


async def seed_demo(services: Services) -> list[DemoAccount]:
    cabinets, users = services.cabinets, services.users
    by_external_id: dict[str, Cabinet] = {}
    for external_id, name, kind, parent in CABINETS:
        found = await cabinets.get_by_external_id(SYSTEM, external_id)
        if found is None:
            parent_id = by_external_id[parent].id if parent else None
            found = await cabinets.create(SYSTEM, name, kind, parent_id, external_id)
        by_external_id[external_id] = found
    accounts = []
    for email, name, role, cabinet_key, password in USERS:
        cabinet = by_external_id[cabinet_key]
        existing = await users.find_by_email(SYSTEM, email)
        if existing is None:
            await users.create_with_password(SYSTEM, cabinet.id, email, name, role, password)
        else:
            await users.reset_password(SYSTEM, existing.id, password)
        accounts.append(DemoAccount(email, password, role, name, cabinet.name))
    for draft in PRODUCTS:
        try:
            await services.catalog.create(SYSTEM, draft)
        except Conflict:
            pass  # there from an earlier run
    for purchase in _purchases(services.licensing.today()):
        await services.purchases.apply(purchase)  # a repeat changes nothing
    await _releases(services, services.licensing.today())
    await _support_requests(services, by_external_id)
    return accounts


async def _support_requests(services: Services, cabinets: dict[str, Cabinet]) -> None:
    """Two of Acme's requests: one the support team waits on the customer for, one solved.
    Made once."""
    acme = cabinets["DEMO-ACME"]
    known = await services.support.list_visible(SYSTEM, IssueFilter(text="Collector stops"),
                                                PageRequest(1), acme.id)
    if known.items:
        return

    async def principal(email: str) -> Principal:
        user = await services.users.find_by_email(SYSTEM, email)
        assert user is not None, email
        return Principal.of(user, cabinets["DEMO-VENDOR"] if user.role.is_staff else acme)

    bob, alice = await principal("user@acme.example"), await principal("admin@acme.example")
    sam = await principal("support@hornsandhooves.example")
    product = await services.catalog.get_by_code(SYSTEM, "dbguard")
    waiting = await services.support.open(bob, RequestDraft(
        subject="Collector stops after the upgrade to 5.0.1",
        description="Since we installed 5.0.1 the collector on db-03 stops every night "
                    "around 02:00. Restarting it helps until the next night.",
        product_id=product.id, priority=Priority.HIGH))
    await services.conversation.comment(bob, waiting.id, "It also happened on db-04 today.")
    await services.support.update(sam, waiting.id, IssueChanges(assignee_id=sam.user_id))
    await services.conversation.comment(
        sam, waiting.id, "Thank you. Could you attach the collector log of db-03 from last "
        "night (/var/log/dbguard/collector.log)?")
    await services.conversation.comment(sam, waiting.id, "Probably the log rotation bug "
                                        "fixed in 5.1; check the cron job.", public=False)
    await services.support.update(sam, waiting.id, IssueChanges(status=IssueStatus.WAITING))
    solved = await services.support.open(alice, RequestDraft(
        subject="Moving our license to new hardware",
        description="We replace the database servers next month. Does the license move "
                    "with us?", product_id=product.id, priority=Priority.LOW))
    await services.conversation.comment(
        sam, solved.id, "Yes: install on the new servers and import the same license file; "
        "the seat count is what matters, not the hardware.")
    await services.support.update(sam, solved.id, IssueChanges(status=IssueStatus.RESOLVED))


# (product code, version, days before today, release.yaml without published_at,
#  {file name: size in bytes})
RELEASES = [
    ("dbguard", "5.0", 150, "kind: release\ntitle: DB Guard 5.0\nnotes: |\n"
     "  A new **policy editor** and faster audit search.\n\n"
     "  - Policies are versioned and can be rolled back.\n"
     "  - Audit search answers in under a second on 1 billion events.\n",
     {"dbguard-5.0-x86_64.iso": 3 << 20, "dbguard-5.0-install-guide.txt": 24 << 10}),
    ("dbguard", "5.0.1", 60, "kind: update\ntitle: DB Guard 5.0.1\nnotes: |\n"
     "  Fixes a crash of the collector when a monitored server restarts.\n",
     {"dbguard-5.0.1-update.tar.gz": 512 << 10}),
    ("dbguard", "5.1.1", 3, "kind: security\ntitle: DB Guard 5.1.1 security update\n"
     "notes: |\n  Upgrade **now** if the management console is reachable from untrusted "
     "networks.\nadvisories:\n  - {id: CVE-2026-31337, severity: high, summary: "
     "Authentication bypass in the management console}\n",
     {"dbguard-5.1.1-security-update.tar.gz": 384 << 10}),
    ("vaultkeeper", "2.4", 200, "kind: release\ntitle: VaultKeeper 2.4\nnotes: |\n"
     "  Secrets can now be **rotated on a schedule**.\n",
     {"vaultkeeper-2.4.qcow2": 2 << 20, "vaultkeeper-2.4-admin-guide.txt": 16 << 10}),
    ("vaultkeeper", "2.4.1", 14, "kind: fix\ntitle: VaultKeeper 2.4.1\nnotes: |\n"
     "  Fixes the replication lag alarm firing on idle clusters.\n",
     {"vaultkeeper-2.4.1-fix.tar.gz": 256 << 10}),
]


async def _releases(services: Services, today: date) -> None:
    """Demo files in the object store (made once; their bytes follow from their names), then
    a scan registers what is not registered yet."""
    products: dict[str, Product] = {}
    for code, version, days_ago, manifest, files in RELEASES:
        product = products.get(code) or await services.catalog.get_by_code(SYSTEM, code)
        products[code] = product
        folder = f"{product.prefix}{version}/"
        published = (today - timedelta(days=days_ago)).isoformat()
        members = {**{name: _filler(name, size) for name, size in files.items()},
                   "release.yaml": _once(f"{manifest}published_at: {published}\n".encode())}
        try:
            for name, chunks in members.items():
                if not await _exists(services.objects, product.bucket, folder + name):
                    await services.objects.put(product.bucket, folder + name, chunks)
        except ObjectStoreError as exc:
            log.warning("demo releases left out: the object store refused them (%s)", exc)
            return
    for product in products.values():
        await services.releases.scan(SYSTEM, product.id)


async def _exists(objects: ObjectStore, bucket: str, key: str) -> bool:
    try:
        await objects.head(bucket, key)
    except ObjectNotFound:
        return False
    return True


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _filler(name: str, size: int) -> AsyncIterator[bytes]:
    """`size` bytes that look like a binary, the same on every run."""
    seed = hashlib.sha256(name.encode()).digest()
    block = b"".join(hashlib.sha256(seed + n.to_bytes(4, "big")).digest() for n in range(2048))
    for start in range(0, size, len(block)):
        yield block[:size - start]

