"""Hand-written fakes of the ports, for unit tests of the services without I/O.

They keep everything in dicts. A unit of work works on a copy of the state and writes it
back on commit, so "rolls back unless committed" holds here too. They are not adapters: the
contract suites hold the real adapters to the ports.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from app.domain.access import Scope
from app.domain.audit import AuditEntry
from app.domain.cabinets import Cabinet
from app.domain.events import DomainEvent
from app.domain.licensing import Certificate, DocumentFilter, License, Transfer
from app.domain.notifications import Batch, Notification, NotificationKind
from app.domain.outbox import OutboxMessage
from app.domain.paging import PageRequest
from app.domain.products import Product
from app.domain.sessions import LoginSession
from app.domain.users import User
from ports.security import InvalidToken
from ports.storage import DuplicateKey, EventLog


class FakeClock:
    def __init__(self, now: datetime = datetime(2026, 11, 26, 12, tzinfo=UTC)) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


class FakeIds:
    """Time-ordered like the real ids: a counter in the first field."""

    def __init__(self) -> None:
        self.count = 0

    def new_id(self) -> str:
        self.count += 1
        return f"{self.count:08x}-0000-7000-8000-{uuid.uuid4().hex[:12]}"


class FakePasswordHasher:
    """"Hashes" by prefixing; checks take no time, so no timing is tested here."""

    async def hash(self, password: str) -> str:
        return "fake$" + password

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return password_hash is not None and password_hash == "fake$" + password

    def needs_rehash(self, password_hash: str) -> bool:
        return False


class FakeTokenCodec:
    """Unsigned JSON tokens whose expiry is judged by the fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock

    def encode(self, claims: dict[str, Any]) -> str:
        return "fake." + json.dumps(claims, sort_keys=True)

    def decode(self, token: str) -> dict[str, Any]:
        if not token.startswith("fake."):
            raise InvalidToken("not a fake token")
        claims: dict[str, Any] = json.loads(token[5:])
        if claims["exp"] <= self._clock.now().timestamp():
            raise InvalidToken("expired")
        return claims

    def public_jwks(self) -> dict[str, Any]:
        return {"keys": []}


@dataclass
class _State:
    cabinets: dict[str, Cabinet] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)
    licenses: dict[str, License] = field(default_factory=dict)
    certificates: dict[str, Certificate] = field(default_factory=dict)
    transfers: list[Transfer] = field(default_factory=list)
    users: dict[str, User] = field(default_factory=dict)
    sessions: dict[str, LoginSession] = field(default_factory=dict)
    refresh: dict[str, dict[str, Any]] = field(default_factory=dict)
    password_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    throttle: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    outbox: list[OutboxMessage] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    position: int = 0


def _page(items: list[Any], page: PageRequest) -> list[Any]:
    ordered = sorted((i for i in items if page.after is None or i.id > page.after),
                     key=lambda i: i.id)
    return [copy.copy(i) for i in ordered[: page.limit + 1]]


class _Cabinets:
    def __init__(self, state: _State) -> None:
        self.s = state

    async def add(self, cabinet: Cabinet) -> None:
        if cabinet.external_id and any(c.external_id == cabinet.external_id
                                       for c in self.s.cabinets.values()):
            raise DuplicateKey("cabinets.external_id")
        self.s.cabinets[cabinet.id] = copy.copy(cabinet)

    async def get(self, cabinet_id: str, scope: Scope, *,
                  for_update: bool = False) -> Cabinet | None:
        found = self.s.cabinets.get(cabinet_id)
        return copy.copy(found) if found and scope.contains(found.path) else None

    async def get_by_external_id(self, external_id: str, scope: Scope) -> Cabinet | None:
        return next((copy.copy(c) for c in self.s.cabinets.values()
                     if c.external_id == external_id and scope.contains(c.path)), None)

    async def get_many(self, cabinet_ids: list[str], scope: Scope) -> list[Cabinet]:
        return sorted((copy.copy(c) for i in cabinet_ids if (c := self.s.cabinets.get(i))
                       and scope.contains(c.path)), key=lambda c: c.id)

    async def list_visible(self, scope: Scope, page: PageRequest) -> list[Cabinet]:
        return _page([c for c in self.s.cabinets.values() if scope.contains(c.path)], page)

    async def children(self, parent_id: str, scope: Scope, page: PageRequest) -> list[Cabinet]:
        return _page([c for c in self.s.cabinets.values()
                      if c.parent_id == parent_id and scope.contains(c.path)], page)

    async def update(self, cabinet: Cabinet) -> None:
        if cabinet.external_id and any(c.external_id == cabinet.external_id and c.id != cabinet.id
                                       for c in self.s.cabinets.values()):
            raise DuplicateKey("cabinets.external_id")
        stored = self.s.cabinets[cabinet.id]
        self.s.cabinets[cabinet.id] = replace(stored, name=cabinet.name, kind=cabinet.kind,
                                              external_id=cabinet.external_id,
                                              contact_email=cabinet.contact_email,
                                              updated_at=cabinet.updated_at)

    async def move(self, cabinet: Cabinet, new_parent: Cabinet | None, at: datetime) -> Cabinet:
        old = cabinet.path
        new = f"{new_parent.path if new_parent else '/'}{cabinet.id}/"
        for key, stored in self.s.cabinets.items():
            if stored.path.startswith(old):
                self.s.cabinets[key] = replace(stored, path=new + stored.path[len(old):])
        moved = replace(self.s.cabinets[cabinet.id],
                        parent_id=new_parent.id if new_parent else None, updated_at=at)
        self.s.cabinets[cabinet.id] = moved
        return copy.copy(moved)


class _Products:
    def __init__(self, state: _State) -> None:
        self.s = state

    async def add(self, product: Product) -> None:
        if any(p.code == product.code for p in self.s.products.values()):
            raise DuplicateKey("products.code")
        self.s.products[product.id] = copy.deepcopy(product)

    async def get(self, product_id: str) -> Product | None:
        return copy.deepcopy(self.s.products.get(product_id))

    async def get_by_code(self, code: str) -> Product | None:
        return next((copy.deepcopy(p) for p in self.s.products.values() if p.code == code), None)

    async def get_many(self, product_ids: list[str]) -> list[Product]:
        return [copy.deepcopy(self.s.products[i]) for i in sorted(product_ids)
                if i in self.s.products]

    async def list_page(self, page: PageRequest, *, include_inactive: bool) -> list[Product]:
        return _page([p for p in self.s.products.values() if include_inactive or p.active], page)

    async def update(self, product: Product) -> None:
        stored = self.s.products[product.id]
        self.s.products[product.id] = replace(copy.deepcopy(product), code=stored.code,
                                              created_at=stored.created_at)


class _Documents:
    def __init__(self, table: dict[str, Any], state: _State) -> None:
        self.t = table
        self.s = state

    def _in_scope(self, document: Any, scope: Scope) -> bool:
        return scope.contains(self.s.cabinets[document.cabinet_id].path)

    async def add(self, document: Any) -> None:
        for key in ("number", "purchase_item"):
            value = getattr(document, key)
            if value is not None and any(getattr(d, key) == value for d in self.t.values()):
                raise DuplicateKey(f"documents.{key}")
        self.t[document.id] = copy.deepcopy(document)

    async def get(self, document_id: str, scope: Scope, *, for_update: bool = False) -> Any:
        found = self.t.get(document_id)
        return copy.deepcopy(found) if found and self._in_scope(found, scope) else None

    async def get_by_number(self, number: str, scope: Scope) -> Any:
        return next((copy.deepcopy(d) for d in self.t.values()
                     if d.number == number and self._in_scope(d, scope)), None)

    async def get_by_purchase_item(self, purchase_item: str, scope: Scope,
                                   *, for_update: bool = False) -> Any:
        return next((copy.deepcopy(d) for d in self.t.values()
                     if d.purchase_item == purchase_item and self._in_scope(d, scope)), None)

    async def number_taken(self, number: str) -> bool:
        return any(d.number == number for d in self.t.values())

    async def list_visible(self, scope: Scope, filters: DocumentFilter,
                           page: PageRequest) -> list[Any]:
        def passes(d: Any) -> bool:
            return (self._in_scope(d, scope)
                    and filters.product_id in (None, d.product_id)
                    and filters.status in (None, d.status(filters.today))
                    and (filters.expires_before is None
                         or (d.valid_to is not None and d.valid_to < filters.expires_before)))
        return _page([d for d in self.t.values() if passes(d)], page)

    async def update(self, document: Any) -> None:
        self.t[document.id] = copy.deepcopy(document)


class _Transfers:
    def __init__(self, state: _State) -> None:
        self.s = state

    async def add(self, transfer: Transfer) -> None:
        self.s.transfers.append(transfer)

    async def of_document(self, document_id: str) -> list[Transfer]:
        return [t for t in self.s.transfers if t.document_id == document_id]


class _Users:
    def __init__(self, state: _State) -> None:
        self.s = state

    def _in_scope(self, user: User, scope: Scope) -> bool:
        return user.deleted_at is None and scope.contains(self.s.cabinets[user.cabinet_id].path)

    async def add(self, user: User) -> None:
        if any(u.email_key == user.email_key for u in self.s.users.values() if u.email_key):
            raise DuplicateKey("users.email_key")
        self.s.users[user.id] = copy.copy(user)

    async def get(self, user_id: str, scope: Scope, *, for_update: bool = False) -> User | None:
        found = self.s.users.get(user_id)
        return copy.copy(found) if found and self._in_scope(found, scope) else None

    async def get_by_email_key(self, key: str) -> User | None:
        return next((copy.copy(u) for u in self.s.users.values()
                     if u.email_key == key and u.deleted_at is None), None)

    async def list_in_cabinet(self, cabinet_id: str, scope: Scope,
                              page: PageRequest) -> list[User]:
        return _page([u for u in self.s.users.values()
                      if u.cabinet_id == cabinet_id and self._in_scope(u, scope)], page)

    async def update(self, user: User) -> None:
        self.s.users[user.id] = copy.copy(user)


class _Sessions:
    def __init__(self, state: _State) -> None:
        self.s = state

    async def add(self, session: LoginSession) -> None:
        self.s.sessions[session.id] = copy.copy(session)

    async def get(self, session_id: str) -> LoginSession | None:
        found = self.s.sessions.get(session_id)
        return copy.copy(found) if found else None

    async def revoke(self, session_id: str, at: datetime) -> None:
        session = self.s.sessions.get(session_id)
        if session and session.revoked_at is None:
            session.revoked_at = at

    async def revoke_all_of_user(self, user_id: str, at: datetime) -> None:
        for session in self.s.sessions.values():
            if session.user_id == user_id and session.revoked_at is None:
                session.revoked_at = at

    async def add_refresh_token(self, jti: str, session_id: str, expires_at: datetime) -> None:
        self.s.refresh[jti] = {"session_id": session_id, "used_at": None}

    async def use_refresh_token(self, jti: str, session_id: str, at: datetime) -> bool:
        token = self.s.refresh.get(jti)
        if token is None or token["session_id"] != session_id or token["used_at"] is not None:
            return False
        token["used_at"] = at
        return True

    async def refresh_token_used_at(self, jti: str, session_id: str) -> datetime | None:
        token = self.s.refresh.get(jti)
        return token["used_at"] if token and token["session_id"] == session_id else None

    async def add_password_token(self, token_hash: str, user_id: str,
                                 expires_at: datetime) -> None:
        self.s.password_tokens[token_hash] = {"user_id": user_id, "expires_at": expires_at,
                                              "used_at": None}

    async def password_token_user(self, token_hash: str, at: datetime) -> str | None:
        token = self.s.password_tokens.get(token_hash)
        if token is None or token["used_at"] is not None or token["expires_at"] <= at:
            return None
        return str(token["user_id"])

    async def use_password_token(self, token_hash: str, at: datetime) -> str | None:
        user_id = await self.password_token_user(token_hash, at)
        if user_id is not None:
            self.s.password_tokens[token_hash]["used_at"] = at
        return user_id


class _Audit:
    def __init__(self, state: _State) -> None:
        self.s = state

    async def add(self, entry: AuditEntry) -> None:
        self.s.audit.append(entry)

    async def list_visible(self, scope: Scope, page: PageRequest,
                           object_id: str | None = None,
                           action: str | None = None) -> list[AuditEntry]:
        def visible(entry: AuditEntry) -> bool:
            cabinet = self.s.cabinets.get(entry.cabinet_id or "")
            if cabinet is None:
                return scope.path_prefix is None
            return scope.contains(cabinet.path)
        return _page([e for e in self.s.audit if visible(e)
                      and (object_id is None or e.object_id == object_id)
                      and (action is None or e.action == action)], page)


class _Throttle:
    def __init__(self, state: _State) -> None:
        self.s = state

    async def hit(self, key: str, now: datetime, expired: datetime) -> tuple[int, datetime]:
        attempts, started = self.s.throttle.get(key, (0, now))
        if started <= expired:
            attempts, started = 0, now
        self.s.throttle[key] = (attempts + 1, started)
        return self.s.throttle[key]

    async def forgive(self, key: str) -> None:
        if key in self.s.throttle and self.s.throttle[key][0] > 0:
            attempts, started = self.s.throttle[key]
            self.s.throttle[key] = (attempts - 1, started)

    async def reset(self, key: str) -> None:
        self.s.throttle.pop(key, None)

    async def prune(self, before: datetime) -> None:
        for key in [k for k, (_, started) in self.s.throttle.items() if started < before]:
            del self.s.throttle[key]


class _Outbox:
    def __init__(self, state: _State) -> None:
        self.s = state

    async def add(self, *messages: OutboxMessage) -> None:
        self.s.outbox.extend(messages)


class _Notifications:
    def __init__(self, state: _State) -> None:
        self.s = state

    async def next_position(self) -> int:
        self.s.position += 1
        return self.s.position

    async def write(self, batch: Batch) -> None:
        self.s.notifications.extend(batch.notification(user_id) for user_id in batch.users)

    async def muted(self, kind: NotificationKind) -> set[str]:
        return set()

    async def mail_targets(self, user_ids: list[str],
                           kind: NotificationKind) -> list[tuple[str, str, str]]:
        return [(u.id, u.email, u.name) for u in self.s.users.values()
                if u.id in user_ids and u.active]


class FakeUnitOfWork:
    def __init__(self, storage: FakeStorage, events: EventLog | None = None) -> None:
        self._storage = storage
        self._state = copy.deepcopy(storage.state)
        self.cabinets = _Cabinets(self._state)
        self.products = _Products(self._state)
        self.licenses = _Documents(self._state.licenses, self._state)
        self.certificates = _Documents(self._state.certificates, self._state)
        self.transfers = _Transfers(self._state)
        self.events = events or EventLog()
        self.users = _Users(self._state)
        self.sessions = _Sessions(self._state)
        self.audit = _Audit(self._state)
        self.login_throttle = _Throttle(self._state)
        self.outbox = _Outbox(self._state)
        self.notifications = _Notifications(self._state)

    async def commit(self) -> None:
        await self.events.commit(self, self._commit)

    async def _commit(self) -> None:
        self._storage.state = copy.deepcopy(self._state)


class FakeStorage:
    def __init__(self) -> None:
        self.state = _State()

    @asynccontextmanager
    async def unit_of_work(self, events: EventLog | None = None
                           ) -> AsyncIterator[FakeUnitOfWork]:
        yield FakeUnitOfWork(self, events)

    async def ping(self) -> None:
        return None

    async def pending_migrations(self) -> list[str]:
        return []

    async def migrate(self) -> list[str]:
        return []


class RecordingEventBus:
    """Keeps what was published, for tests to look at."""

    def __init__(self) -> None:
        self.published: list[DomainEvent] = []

    async def publish(self, event: DomainEvent) -> None:
        self.published.append(event)
