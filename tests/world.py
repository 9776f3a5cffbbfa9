"""A small organisation tree with one signed-in user per role, for API tests.

    vendor V ─ staff_admin, staff
    customer P ─ customer C (the customers' own cabinet) ─ G (child of C)
               └ S (sibling of C)
    customer F (foreign)
"""

from __future__ import annotations

import email as email_parser
import email.policy as email_policy
import itertools
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

from aiohttp import web
from aiohttp.test_utils import TestClient

from adapters.system import Uuid7Ids
from app.config import Settings
from app.domain.access import Scope
from app.domain.cabinets import Cabinet, CabinetKind
from app.domain.licensing import Certificate, DocumentKind, License
from app.domain.products import Product
from app.domain.releases import Release
from app.domain.roles import Role
from app.domain.support import SupportIssue
from app.domain.users import SYSTEM, Principal
from app.services.catalog import ProductDraft
from app.services.releases import ReleaseDraft
from app.services.support import RequestDraft
from app.web.keys import SERVICES, SETTINGS

# The test client of the portal's app, and the fixtures' types: aiohttp_client
# (pytest-aiohttp) and settings_for (tests/conftest.py).
Client = TestClient[web.Request, web.Application]
SettingsFor = Callable[..., Settings]


class ClientFactory(Protocol):
    def __call__(self, app: web.Application, **options: Any) -> Awaitable[Client]: ...
PASSWORD = "correct horse battery"
ROLES = [Role.CUSTOMER_USER, Role.CUSTOMER_ADMIN, Role.STAFF, Role.STAFF_ADMIN]


# Document numbers, unique in this test process: random ones met each other now and then
# (a few hundred of a million, in one session's database). Of a year the portal never
# issues (it numbers by the current year), so none meets one the purchases feed drew.
_NUMBERS = itertools.count(secrets.randbelow(400_000))
_YEAR = 1999


def unique(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}"


def email(label: str) -> str:
    return f"{unique(label)}@example.test"


@dataclass
class Actor:
    role: Role
    email: str
    user_id: str
    cabinet: Cabinet
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass
class World:
    client: Client
    vendor: Cabinet
    parent: Cabinet
    own: Cabinet
    child: Cabinet
    sibling: Cabinet
    foreign: Cabinet
    product: Product
    actors: dict[Role, Actor] = field(default_factory=dict)

    def cabinet(self, relation: str) -> Cabinet:
        return getattr(self, relation)  # type: ignore[no-any-return]

    async def add_child(self, cabinet: Cabinet) -> Cabinet:
        return await self.client.app[SERVICES].cabinets.create(
            SYSTEM, unique("child"), cabinet.kind, cabinet.id)

    async def add_product(self) -> Product:
        return await self.client.app[SERVICES].catalog.create(SYSTEM, ProductDraft(
            code=unique("product").lower(), name="Another Product", bucket="releases"))

    async def add_document(self, kind: DocumentKind, cabinet: Cabinet, *,
                           valid_to: date | None = date(2099, 12, 31),
                           valid_from: date = date(2026, 1, 1), product: Product | None = None,
                           revoked: bool = False,
                           license_id: str | None = None) -> License | Certificate:
        """A license or certificate straight into storage (the purchases feed is tested on
        its own)."""
        ids, now = Uuid7Ids(), datetime.now(UTC)
        common: dict[str, Any] = {
            "id": ids.new_id(), "number": f"{kind.prefix}-{_YEAR}-{next(_NUMBERS):06d}",
            "product_id": (product or self.product).id, "cabinet_id": cabinet.id,
            "valid_from": valid_from, "valid_to": valid_to,
            "revoked_at": now if revoked else None, "purchase_item": unique("ORD"),
            "created_at": now, "updated_at": now}
        storage = self.client.app[SERVICES].storage
        async with storage.unit_of_work() as uow:
            document: License | Certificate
            if kind is DocumentKind.LICENSE:
                document = License(**common, edition="Enterprise", seats=50)
                await uow.licenses.add(document)
            else:
                document = Certificate(**common, level="premium", license_id=license_id)
                await uow.certificates.add(document)
            await uow.commit()
        return document

    async def publish(self, version: str, files: dict[str, bytes],
                      manifest: str | None = None, product: Product | None = None) -> Release:
        """Put files into the object store under the product's prefix and register them."""
        product = product or self.product
        services = self.client.app[SERVICES]

        async def once(data: bytes) -> AsyncIterator[bytes]:
            yield data

        folder = f"{product.prefix}{version}/"
        for name, data in files.items():
            await services.objects.put(product.bucket, folder + name, once(data))
        if manifest is not None:
            await services.objects.put(product.bucket, folder + "release.yaml",
                                       once(manifest.encode()))
        return await services.releases.register(SYSTEM, product.id, ReleaseDraft(version))

    async def add_issue(self, cabinet: Cabinet) -> tuple[SupportIssue, Principal]:
        """A support request of `cabinet`, opened by a fresh user of it (on a fresh
        certificate), and that user."""
        await self.add_document(DocumentKind.CERTIFICATE, cabinet)
        services = self.client.app[SERVICES]
        user_id = await self.add_user(cabinet)
        async with services.storage.unit_of_work() as uow:
            user = await uow.users.get(user_id, Scope.everything())
        assert user is not None
        author = Principal.of(user, cabinet)
        issue = await services.support.open(author, RequestDraft(
            subject=unique("Cannot connect"), description="Since the upgrade.",
            product_id=self.product.id))
        return issue, author

    async def add_user(self, cabinet: Cabinet, role: Role = Role.CUSTOMER_USER) -> str:
        """A user without a password in `cabinet`; its id."""
        if cabinet.kind is CabinetKind.VENDOR and not role.is_staff:
            role = Role.STAFF
        invitation = await self.client.app[SERVICES].users.invite(
            SYSTEM, cabinet.id, email("target"), "Target User", role)
        return invitation.user.id


    async def signed_in(self, cabinet: Cabinet, role: Role) -> dict[str, str]:
        """The bearer headers of a new user of `role` in `cabinet`."""
        address = email(role.value)
        await self.client.app[SERVICES].users.create_with_password(
            SYSTEM, cabinet.id, address, role.value, role, PASSWORD)
        tokens = await login(self.client, address)
        return {"Authorization": f"Bearer {tokens['access_token']}"}


async def mail_texts(client: Client, address: str) -> list[str]:
    """The plain text of every e-mail to `address`, oldest first: waiting in the outbox, or
    already sent by its worker (which forgets the text) into the mail folder."""
    app = client.app
    async with app[SERVICES].storage.unit_of_work(read_only=True) as uow:
        queued = await uow.outbox.list_recent(200, recipient=address)
    sent = {}
    for file in (app[SETTINGS].data_dir / "mail").glob("*.eml"):
        message = email_parser.message_from_bytes(file.read_bytes(),
                                                  policy=email_policy.default)
        body = message.get_body(("plain",))
        sent[str(message["Message-ID"])] = body.get_content() if body else ""
    return [m.text_body or sent.get(m.message_id, "") for m in reversed(queued)]


async def login(client: Client, address: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/api/v1/jwt", json={"email": address, "password": password})
    assert response.status == 200, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def build_world(client: Client) -> World:
    services = client.app[SERVICES]
    cabinets = services.cabinets

    async def cabinet(name: str, kind: CabinetKind, parent: Cabinet | None = None) -> Cabinet:
        return await cabinets.create(SYSTEM, unique(name), kind, parent.id if parent else None)

    vendor = await cabinet("vendor", CabinetKind.VENDOR)
    parent = await cabinet("parent", CabinetKind.CUSTOMER)
    own = await cabinet("own", CabinetKind.CUSTOMER, parent)
    product = await services.catalog.create(SYSTEM, ProductDraft(
        code=unique("dbguard"), name="DB Guard", bucket="releases"))
    world = World(client=client, vendor=vendor, parent=parent, own=own,
                  child=await cabinet("child", CabinetKind.CUSTOMER, own),
                  sibling=await cabinet("sibling", CabinetKind.CUSTOMER, parent),
                  foreign=await cabinet("foreign", CabinetKind.CUSTOMER), product=product)
    for role in ROLES:
        home = vendor if role.is_staff else own
        address = email(role.value)
        user = await services.users.create_with_password(
            SYSTEM, home.id, address, role.value.replace("_", " ").title(), role, PASSWORD)
        tokens = await login(client, address)
        world.actors[role] = Actor(role, address, user.id, home, tokens["access_token"],
                                   tokens["refresh_token"])
    return world
