"""Demo data for a first look: a vendor, two customers with a child each, a user per role.

Running it again changes nothing but the demo users' passwords, which it sets back to the
printed ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.cabinets import Cabinet, CabinetKind
from app.domain.roles import Role
from app.domain.users import SYSTEM
from app.services.cabinets import CabinetService
from app.services.users import UserService


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


async def seed_demo(cabinets: CabinetService, users: UserService) -> list[DemoAccount]:
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
    return accounts
