"""Demo data for a first look: a vendor, two customers with a child each, a user per role,
two products, and licenses and certificates bought through the purchases feed.

Running it again changes nothing but the demo users' passwords, which it sets back to the
printed ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from app.domain.cabinets import Cabinet, CabinetKind
from app.domain.errors import Conflict
from app.domain.licensing import DocumentKind
from app.domain.purchases import PurchaseCustomer, PurchaseEvent, PurchaseItem, PurchaseType
from app.domain.roles import Role
from app.domain.users import SYSTEM
from app.services import Services
from app.services.catalog import ProductDraft


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


def _purchases(today: date) -> list[PurchaseEvent]:
    """Licenses and certificates in every state a customer meets: fresh, expiring within
    weeks, expired, perpetual. Dates follow today, so the demo always looks alive."""
    def event(event_id: str, customer: str, name: str, parent: str | None,
              *items: PurchaseItem) -> PurchaseEvent:
        return PurchaseEvent(event_id, PurchaseType.COMPLETED,
                             datetime.combine(today, datetime.min.time(), UTC),
                             PurchaseCustomer(customer, name, parent), items)

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
        existing = await users.find_by_email(email)
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
    return accounts
