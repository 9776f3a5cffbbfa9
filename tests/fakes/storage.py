"""A fake of the storage port, for unit tests of the services without I/O.

Everything is kept in dicts. A unit of work works on a copy of the state and writes it
back on commit, so "rolls back unless committed" holds here too, events included. It is
no adapter (there is no locking: one test, one task): the contract suites hold the real
adapters to the port, and the fake to the same unit-of-work contract.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar

from app.domain.access import Scope
from app.domain.audit import EVERY_ENTRY, AuditEntry, AuditFilter
from app.domain.cabinets import Cabinet, CabinetKind
from app.domain.licensing import Certificate, DocumentFilter, DocumentKind, License, Transfer
from app.domain.notifications import Batch, Notification, NotificationKind, Preference
from app.domain.outbox import OutboxMessage, OutboxStatus
from app.domain.paging import PageRequest
from app.domain.products import Product
from app.domain.releases import Artifact, Release
from app.domain.reminders import DueDocument
from app.domain.roles import Role
from app.domain.sessions import LoginSession
from app.domain.subscriptions import Cadence, ReportSubscription
from app.domain.support import (
    Attachment,
    Comment,
    Delivery,
    IssueFilter,
    IssueListing,
    SupportDelivery,
    SupportIssue,
)
from app.domain.users import User
from ports.storage import Described, DuplicateKey, EventLog

D = TypeVar("D", License, Certificate)
NO_BOUND = 2 ** 63 - 1


@dataclass
class _State:
    cabinets: dict[str, Cabinet] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)
    licenses: dict[str, License] = field(default_factory=dict)
    certificates: dict[str, Certificate] = field(default_factory=dict)
    transfers: list[Transfer] = field(default_factory=list)
    releases: dict[str, Release] = field(default_factory=dict)
    purchases: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    sessions: dict[str, LoginSession] = field(default_factory=dict)
    refresh: dict[str, dict[str, Any]] = field(default_factory=dict)
    password_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    throttle: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    outbox: dict[str, OutboxMessage] = field(default_factory=dict)
    leases: dict[str, datetime] = field(default_factory=dict)
    notifications: list[Notification] = field(default_factory=list)
    held: dict[int, Batch] = field(default_factory=dict)
    preferences: dict[tuple[str, NotificationKind], Preference] = field(default_factory=dict)
    reminded: set[tuple[str, date, int]] = field(default_factory=set)
    position: int = 0
    locks: set[str] = field(default_factory=set)
    issues: dict[str, SupportIssue] = field(default_factory=dict)
    comments: dict[str, Comment] = field(default_factory=dict)
    attachments: dict[str, Attachment] = field(default_factory=dict)
    deliveries: dict[str, SupportDelivery] = field(default_factory=dict)
    delivery_leases: dict[str, datetime] = field(default_factory=dict)
    cursors: dict[str, str] = field(default_factory=dict)
    subscriptions: dict[str, ReportSubscription] = field(default_factory=dict)
    report_periods: set[tuple[str, str]] = field(default_factory=set)


def _page(items: list[Any], page: PageRequest,
          sorts: dict[str, Callable[[Any], Any]] | None = None) -> list[Any]:
    """By id after the cursor, or a numbered page in the order of `sorts[page.sort.key]`
    (ties by id), as the SQL adapters page."""
    if page.sort is None:
        ordered = sorted((i for i in items if page.after is None or i.id > page.after),
                         key=lambda i: i.id)
        return [copy.copy(i) for i in ordered[: page.limit + 1]]
    key = (sorts or {})[page.sort.key]
    ordered = sorted(items, key=lambda i: (key(i), i.id), reverse=page.sort.descending)
    return [copy.copy(i) for i in ordered[page.offset: page.offset + page.limit + 1]]


def _contains(text: str, *values: str) -> bool:
    wanted = text.strip().lower()
    return not wanted or any(wanted in value.lower() for value in values)


def _live(user: User) -> bool:
    return user.active and user.deleted_at is None


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

    def _found(self, scope: Scope, search: str) -> list[Cabinet]:
        return [c for c in self.s.cabinets.values()
                if scope.contains(c.path) and _contains(search, c.name, c.external_id or "")]

    async def list_visible(self, scope: Scope, page: PageRequest,
                           search: str = "") -> list[Cabinet]:
        return _page(self._found(scope, search), page, {
            "name": lambda c: c.name.lower(), "kind": lambda c: c.kind.value,
            "created": lambda c: c.created_at})

    async def count_visible(self, scope: Scope, search: str = "") -> int:
        return len(self._found(scope, search))

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


class _Documents(Generic[D]):
    def __init__(self, name: str, table: dict[str, D], state: _State) -> None:
        self.t: dict[str, D] = table
        self.s = state
        self.name = name

    def _in_scope(self, document: D, scope: Scope) -> bool:
        return scope.contains(self.s.cabinets[document.cabinet_id].path)

    async def add(self, *documents: D) -> None:
        for key in ("number", "purchase_item"):
            taken = {getattr(d, key) for d in self.t.values()}
            for document in documents:
                value = getattr(document, key)
                if value is not None and value in taken:
                    raise DuplicateKey(f"{self.name}.{key}")
                taken.add(value)
        for document in documents:
            self.t[document.id] = copy.deepcopy(document)

    async def get(self, document_id: str, scope: Scope, *,
                  for_update: bool = False) -> D | None:
        found = self.t.get(document_id)
        return copy.deepcopy(found) if found and self._in_scope(found, scope) else None

    async def get_by_number(self, number: str, scope: Scope) -> D | None:
        return next((copy.deepcopy(d) for d in self.t.values()
                     if d.number == number and self._in_scope(d, scope)), None)

    async def by_purchase_items(self, purchase_items: list[str], scope: Scope,
                                *, for_update: bool = False) -> dict[str, D]:
        wanted = set(purchase_items)
        return {d.purchase_item: copy.deepcopy(d) for d in self.t.values()
                if d.purchase_item in wanted and self._in_scope(d, scope)}

    async def numbers_taken(self, numbers: list[str]) -> set[str]:
        return {d.number for d in self.t.values()} & set(numbers)

    async def numbers(self, document_ids: list[str]) -> dict[str, str]:
        return {i: self.t[i].number for i in document_ids if i in self.t}

    def _passing(self, scope: Scope, filters: DocumentFilter) -> list[D]:
        def passes(d: D) -> bool:
            return (self._in_scope(d, scope)
                    and filters.product_id in (None, d.product_id)
                    and filters.status in (None, d.status(filters.today))
                    and (filters.expires_before is None
                         or (d.valid_to is not None and d.valid_to < filters.expires_before))
                    and _contains(filters.search, d.number,
                                  self.s.cabinets[d.cabinet_id].name))
        return [d for d in self.t.values() if passes(d)]

    async def list_visible(self, scope: Scope, filters: DocumentFilter,
                           page: PageRequest) -> list[D]:
        return _page(self._passing(scope, filters), page, {
            "number": lambda d: d.number,
            "product": lambda d: self.s.products[d.product_id].name.lower(),
            "holder": lambda d: self.s.cabinets[d.cabinet_id].name.lower(),
            "valid_to": lambda d: (d.valid_to is None, d.valid_to or date.min)})

    async def count_visible(self, scope: Scope, filters: DocumentFilter) -> int:
        return len(self._passing(scope, filters))

    def _described(self, document: D) -> Described[D]:
        license_id = getattr(document, "license_id", None)
        covered = self.s.licenses.get(license_id) if license_id else None
        return Described(document, copy.copy(self.s.products[document.product_id]),
                         copy.copy(self.s.cabinets[document.cabinet_id]),
                         covered.number if covered else None)

    async def get_described(self, document_id: str, scope: Scope) -> Described[D] | None:
        found = await self.get(document_id, scope)
        return self._described(found) if found else None

    async def list_described(self, scope: Scope, filters: DocumentFilter,
                             page: PageRequest) -> list[Described[D]]:
        return [self._described(d) for d in await self.list_visible(scope, filters, page)]

    async def update(self, document: D) -> None:
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

    def _in_cabinet(self, cabinet_id: str, scope: Scope, search: str) -> list[User]:
        return [u for u in self.s.users.values() if u.cabinet_id == cabinet_id
                and self._in_scope(u, scope) and _contains(search, u.name, u.email)]

    async def list_in_cabinet(self, cabinet_id: str, scope: Scope, page: PageRequest,
                              search: str = "") -> list[User]:
        return _page(self._in_cabinet(cabinet_id, scope, search), page, {
            "name": lambda u: u.name.lower(), "email": lambda u: u.email_key or "",
            "role": lambda u: u.role.value,
            "last_sign_in": lambda u: (u.last_sign_in_at is None,
                                       u.last_sign_in_at or datetime.min.replace(tzinfo=UTC))})

    async def count_in_cabinet(self, cabinet_id: str, scope: Scope, search: str = "") -> int:
        return len(self._in_cabinet(cabinet_id, scope, search))

    async def update(self, user: User) -> None:
        self.s.users[user.id] = replace(copy.copy(user),
                                        last_sign_in_at=self.s.users[user.id].last_sign_in_at)

    async def mark_signed_in(self, user_id: str, at: datetime) -> None:
        self.s.users[user_id].last_sign_in_at = at


class _Sessions:
    def __init__(self, state: _State) -> None:
        self.s = state

    async def add(self, session: LoginSession) -> None:
        self.s.sessions[session.id] = copy.copy(session)

    async def get(self, session_id: str) -> LoginSession | None:
        found = self.s.sessions.get(session_id)
        return copy.copy(found) if found else None

    async def signed_in(self, session_id: str, user_id: str
                        ) -> tuple[LoginSession, User, Cabinet] | None:
        session = self.s.sessions.get(session_id)
        user = self.s.users.get(user_id)
        if session is None or user is None or user.deleted_at is not None \
                or session.user_id != user_id:
            return None
        return (copy.copy(session), copy.copy(user),
                copy.copy(self.s.cabinets[user.cabinet_id]))

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

    async def add_password_token(self, token_hash: str, user_id: str, expires_at: datetime,
                                 created_at: datetime) -> None:
        self.s.password_tokens[token_hash] = {"user_id": user_id, "expires_at": expires_at,
                                              "used_at": None, "created_at": created_at}

    async def password_links_since(self, user_id: str, since: datetime) -> int:
        return sum(1 for t in self.s.password_tokens.values()
                   if t["user_id"] == user_id and t["created_at"] >= since)

    async def drop_password_tokens(self, user_id: str) -> None:
        for key, token in list(self.s.password_tokens.items()):
            if token["user_id"] == user_id and token["used_at"] is None:
                del self.s.password_tokens[key]

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

    def _passing(self, scope: Scope, filters: AuditFilter) -> list[AuditEntry]:
        def visible(entry: AuditEntry) -> bool:
            cabinet = self.s.cabinets.get(entry.cabinet_id or "")
            if cabinet is None:
                return scope.path_prefix is None
            return scope.contains(cabinet.path)

        def passes(e: AuditEntry) -> bool:
            return (filters.object_id in (None, e.object_id)
                    and (not filters.action or e.action == filters.action
                         or e.action.startswith(filters.action + "."))
                    and _contains(filters.actor, e.actor_email or "")
                    and (filters.since is None or e.at >= filters.since)
                    and (filters.before is None or e.at < filters.before)
                    and filters.product in (None, e.details.get("product")))
        return [e for e in self.s.audit if visible(e) and passes(e)]

    async def list_visible(self, scope: Scope, page: PageRequest,
                           filters: AuditFilter = EVERY_ENTRY) -> list[AuditEntry]:
        return _page(self._passing(scope, filters), page, {"at": lambda e: e.at})

    async def count_visible(self, scope: Scope, filters: AuditFilter = EVERY_ENTRY) -> int:
        return len(self._passing(scope, filters))


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


class _Releases:
    def __init__(self, state: _State) -> None:
        self.s = state

    async def add(self, release: Release) -> bool:
        if any(r.product_id == release.product_id and r.version == release.version
               for r in self.s.releases.values()):
            return False
        self.s.releases[release.id] = copy.deepcopy(release)
        return True

    async def get(self, release_id: str) -> Release | None:
        return copy.deepcopy(self.s.releases.get(release_id))

    async def versions(self, product_id: str) -> set[str]:
        return {r.version for r in self.s.releases.values() if r.product_id == product_id}

    async def list_for_product(self, product_id: str, page: PageRequest,
                               include_yanked: bool = True) -> list[Release]:
        ordered = sorted((r for r in self.s.releases.values() if r.product_id == product_id
                          and (include_yanked or r.yanked_at is None)),
                         key=lambda r: (r.published_at, r.id), reverse=True)
        if page.after is not None and page.after in self.s.releases:
            last = self.s.releases[page.after]
            ordered = [r for r in ordered if (r.published_at, r.id) < (last.published_at,
                                                                       last.id)]
        return [copy.deepcopy(r) for r in ordered[:page.limit + 1]]

    async def get_artifact(self, artifact_id: str) -> tuple[Release, Artifact] | None:
        for release in self.s.releases.values():
            for artifact in release.artifacts:
                if artifact.id == artifact_id:
                    return copy.deepcopy(release), copy.deepcopy(artifact)
        return None

    async def set_yanked(self, release_id: str, at: datetime | None) -> None:
        if release_id in self.s.releases:
            self.s.releases[release_id].yanked_at = at


class _PurchaseEvents:
    def __init__(self, state: _State) -> None:
        self.s = state

    async def claim(self, event_id: str, type_: str, occurred_at: datetime,
                    received_at: datetime) -> bool:
        if event_id in self.s.purchases:
            return False
        self.s.purchases[event_id] = {"type": type_, "outcome": None}
        return True

    async def record_outcome(self, event_id: str, outcome: dict[str, Any]) -> None:
        self.s.purchases[event_id]["outcome"] = copy.deepcopy(outcome)

    async def outcome(self, event_id: str) -> dict[str, Any] | None:
        found = self.s.purchases.get(event_id)
        return copy.deepcopy(found["outcome"]) if found else None


class _Notifications:
    def __init__(self, state: _State) -> None:
        self.s = state

    def _of(self, user_id: str, up_to: int = NO_BOUND) -> list[Notification]:
        return sorted((n for n in self.s.notifications
                       if n.user_id == user_id and n.seq <= up_to), key=lambda n: n.seq)

    async def next_position(self) -> int:
        self.s.position += 1
        return self.s.position

    async def position(self) -> int:
        return self.s.position

    async def write(self, batch: Batch) -> None:
        self.s.notifications.extend(batch.notification(user_id) for user_id in batch.users)

    async def hold(self, batch: Batch) -> None:
        self.s.held[batch.position] = batch

    async def held(self, limit: int) -> list[Batch]:
        return [self.s.held[p] for p in sorted(self.s.held)[:limit]]

    async def waiting_for(self, user_id: str, up_to: int) -> list[Batch]:
        return [replace(batch, users=(user_id,), audience=())
                for batch in await self.waiting(up_to) if user_id in batch.users]

    async def waiting(self, up_to: int) -> list[Batch]:
        return [self.s.held[p] for p in sorted(self.s.held) if p <= up_to]

    async def release(self, position: int) -> None:
        self.s.held.pop(position, None)

    async def since(self, position: int, up_to: int, user_ids: list[str],
                    limit: int) -> list[Notification]:
        wanted = set(user_ids)
        return sorted((copy.copy(n) for n in self.s.notifications
                       if n.user_id in wanted and position <= n.seq <= up_to),
                      key=lambda n: (n.seq, n.user_id))[:limit]

    async def list_for_user(self, user_id: str, page: PageRequest, unread_only: bool = False,
                            up_to: int = NO_BOUND, below: int | None = None,
                            kind: NotificationKind | None = None) -> list[Notification]:
        found = self._of(user_id, up_to)[::-1]
        if page.after is not None:
            last = await self.position_of(user_id, page.after)
            found = [n for n in found if last is not None and n.seq < last]
        return [copy.copy(n) for n in found if (not unread_only or n.read_at is None)
                and (below is None or n.seq < below)
                and kind in (None, n.kind)][:page.limit + 1]

    async def count_for_user(self, user_id: str, up_to: int = NO_BOUND,
                             unread_only: bool = False,
                             kind: NotificationKind | None = None) -> int:
        return sum(1 for n in self._of(user_id, up_to)
                   if (not unread_only or n.read_at is None) and kind in (None, n.kind))

    async def position_of(self, user_id: str, notification_id: str) -> int | None:
        return next((n.seq for n in self._of(user_id) if n.id == notification_id), None)

    async def after(self, user_id: str, seq: int, limit: int,
                    up_to: int = NO_BOUND) -> list[Notification]:
        return [copy.copy(n) for n in self._of(user_id, up_to) if n.seq > seq][:limit]

    async def unread_count(self, user_id: str, up_to: int = NO_BOUND,
                           excluding: tuple[int, ...] = ()) -> int:
        return sum(1 for n in self._of(user_id, up_to)
                   if n.read_at is None and n.seq not in excluding)

    async def set_read(self, user_id: str, notification_id: str,
                       at: datetime | None) -> Notification | None:
        for n in self._of(user_id):
            if n.id == notification_id:
                n.read_at = at
                return copy.copy(n)
        return None

    async def read_all(self, user_id: str, at: datetime) -> int:
        unread = [n for n in self._of(user_id) if n.read_at is None]
        for n in unread:
            n.read_at = at
        return len(unread)

    async def delete(self, user_id: str, notification_id: str) -> bool:
        kept = [n for n in self.s.notifications
                if not (n.user_id == user_id and n.id == notification_id)]
        deleted = len(kept) < len(self.s.notifications)
        self.s.notifications = kept
        return deleted

    async def preferences(self, user_id: str) -> dict[NotificationKind, Preference]:
        return {kind: p for (u, kind), p in self.s.preferences.items() if u == user_id}

    async def set_preferences(self, user_id: str,
                              chosen: dict[NotificationKind, Preference]) -> None:
        for kind, preference in chosen.items():
            self.s.preferences[(user_id, kind)] = preference

    async def muted(self, kind: NotificationKind) -> set[str]:
        return {u for (u, k), p in self.s.preferences.items() if k is kind and not p.in_app}

    async def recipients_in(self, cabinet_ids: list[str]) -> list[str]:
        return sorted(u.id for u in self.s.users.values()
                      if _live(u) and u.cabinet_id in cabinet_ids)

    async def recipients_licensed(self, product_id: str, on: date, today: date) -> list[str]:
        def valid(license_: License, day: date) -> bool:
            return license_.valid_from <= day and (license_.valid_to is None
                                                   or day <= license_.valid_to)
        holders = {license_.cabinet_id for license_ in self.s.licenses.values()
                   if license_.product_id == product_id and license_.revoked_at is None
                   and (valid(license_, on) or valid(license_, today))}
        return sorted(u.id for u in self.s.users.values() if _live(u)
                      and u.cabinet_id in holders)

    async def mail_targets(self, user_ids: list[str],
                           kind: NotificationKind) -> list[tuple[str, str, str]]:
        wanted = set(user_ids)
        return sorted((u.id, u.email, u.name) for u in self.s.users.values()
                      if u.id in wanted and _live(u)
                      and self.s.preferences.get((u.id, kind), Preference()).email)

    async def recipients_all(self) -> list[str]:
        return sorted(u.id for u in self.s.users.values() if _live(u))

    async def recipients_staff(self) -> list[str]:
        return sorted(u.id for u in self.s.users.values() if _live(u) and u.role.is_staff)


class _Outbox:
    def __init__(self, state: _State) -> None:
        self.s = state

    async def add(self, *messages: OutboxMessage) -> None:
        for message in messages:
            if message.message_id not in self.s.outbox:
                self.s.outbox[message.message_id] = replace(
                    message, next_attempt_at=message.next_attempt_at or message.created_at)

    async def claim(self, now: datetime, lease_until: datetime,
                    limit: int) -> list[OutboxMessage]:
        due = sorted((m for m in self.s.outbox.values() if m.status is OutboxStatus.PENDING
                      and (m.next_attempt_at or m.created_at) <= now
                      and self.s.leases.get(m.message_id, now) <= now),
                     key=lambda m: (m.next_attempt_at or m.created_at, m.id))[:limit]
        for message in due:
            self.s.leases[message.message_id] = lease_until
        return [copy.copy(m) for m in due]

    def _done(self, message_id: str, **changes: Any) -> None:
        self.s.leases.pop(message_id, None)
        self.s.outbox[message_id] = replace(self.s.outbox[message_id], **changes)

    async def mark_sent(self, message_id: str, at: datetime) -> None:
        attempts = self.s.outbox[message_id].attempts + 1
        self._done(message_id, status=OutboxStatus.SENT, sent_at=at, attempts=attempts,
                   last_error=None, text_body="", html_body=None)

    async def retry_later(self, message_id: str, attempts: int, at: datetime,
                          error: str) -> None:
        self._done(message_id, attempts=attempts, next_attempt_at=at, last_error=error)

    async def mark_failed(self, message_id: str, attempts: int, error: str) -> None:
        self._done(message_id, status=OutboxStatus.FAILED, attempts=attempts,
                   last_error=error, text_body="", html_body=None)

    async def get(self, message_id: str) -> OutboxMessage | None:
        return copy.copy(self.s.outbox.get(message_id))

    async def backlog(self) -> tuple[int, datetime | None]:
        waiting = [m.created_at for m in self.s.outbox.values()
                   if m.status is OutboxStatus.PENDING]
        return len(waiting), min(waiting, default=None)

    async def list_recent(self, limit: int, recipient: str = "") -> list[OutboxMessage]:
        found = [m for m in self.s.outbox.values()
                 if recipient.lower() in m.recipient.lower()]
        found.sort(key=lambda m: (m.created_at, m.id), reverse=True)
        return [copy.copy(m) for m in found[:limit]]


class _Reminders:
    def __init__(self, state: _State) -> None:
        self.s = state

    async def due(self, kind: DocumentKind, stage: int, first: date, last: date,
                  limit: int) -> list[DueDocument]:
        table: dict[str, Any] = (self.s.licenses if kind is DocumentKind.LICENSE
                                 else self.s.certificates)
        found = []
        for d in sorted(table.values(), key=lambda d: (d.valid_to or date.max, d.id)):
            if (d.valid_to is None or not first <= d.valid_to <= last
                    or d.revoked_at is not None
                    or any((d.id, d.valid_to, s) in self.s.reminded for s in range(stage + 1))):
                continue
            found.append(DueDocument(
                kind=kind, id=d.id, number=d.number, cabinet_id=d.cabinet_id,
                cabinet_name=self.s.cabinets[d.cabinet_id].name,
                product_name=self.s.products[d.product_id].name, valid_to=d.valid_to))
        return found[:limit]

    async def mark(self, document: DueDocument, stage: int, at: datetime) -> bool:
        key = (document.id, document.valid_to, stage)
        if key in self.s.reminded:
            return False
        self.s.reminded.add(key)
        return True

    async def recipients(self, cabinet_id: str) -> list[str]:
        owner = self.s.cabinets[cabinet_id]
        return sorted(u.id for u in self.s.users.values() if _live(u) and (
            u.cabinet_id == owner.id
            or (u.role is Role.CUSTOMER_ADMIN
                and self.s.cabinets[u.cabinet_id].kind is CabinetKind.CUSTOMER
                and owner.path.startswith(self.s.cabinets[u.cabinet_id].path))))


class _Support:
    def __init__(self, state: _State) -> None:
        self.s = state

    def _in(self, issue: SupportIssue, scope: Scope) -> bool:
        return scope.contains(self.s.cabinets[issue.cabinet_id].path)

    async def add(self, issue: SupportIssue) -> None:
        if any(i.number == issue.number for i in self.s.issues.values()):
            raise DuplicateKey("support_issues.number")
        self.s.issues[issue.id] = copy.copy(issue)

    async def get(self, issue_id: str, scope: Scope, *,
                  for_update: bool = False) -> SupportIssue | None:
        found = self.s.issues.get(issue_id)
        return copy.copy(found) if found and self._in(found, scope) else None

    async def get_by_external_id(self, external_id: str) -> SupportIssue | None:
        return next((copy.copy(i) for i in self.s.issues.values()
                     if i.external_id == external_id), None)

    async def number_taken(self, number: str) -> bool:
        return any(i.number == number for i in self.s.issues.values())

    async def list_visible(self, scope: Scope, filters: IssueFilter,
                           page: PageRequest) -> list[IssueListing]:
        text = (filters.text or "").strip().lower()
        found = sorted((i for i in self.s.issues.values() if self._in(i, scope)
                        and (page.after is None or i.id < page.after)
                        and filters.status in (None, i.status)
                        and filters.product_id in (None, i.product_id)
                        and not (filters.active and i.status.done)
                        and filters.assignee_id in (None, i.assignee_id)
                        and not (filters.unassigned and i.assignee_id is not None)
                        and (not text or text in i.subject.lower()
                             or text.upper() == i.number)),
                       key=lambda i: i.id, reverse=True)
        return [IssueListing(copy.copy(i), self.s.products[i.product_id].name,
                             self.s.cabinets[i.cabinet_id].name)
                for i in found[:page.limit + 1]]

    async def open_in_helpdesk(self, after: str | None, limit: int) -> list[SupportIssue]:
        found = sorted((i for i in self.s.issues.values() if i.external_id
                        and i.status.value != "closed" and (after is None or i.id > after)),
                       key=lambda i: i.id)
        return [copy.copy(i) for i in found[:limit]]

    async def update(self, issue: SupportIssue) -> None:
        self.s.issues[issue.id] = copy.copy(issue)

    async def add_comment(self, comment: Comment) -> None:
        self.s.comments[comment.id] = copy.copy(comment)

    async def get_comment(self, issue_id: str, comment_id: str) -> Comment | None:
        found = self.s.comments.get(comment_id)
        return copy.copy(found) if found and found.issue_id == issue_id \
            and found.deleted_at is None else None

    async def comment_by_external_id(self, issue_id: str,
                                     external_id: str) -> Comment | None:
        return next((copy.copy(c) for c in self.s.comments.values()
                     if c.issue_id == issue_id and c.external_id == external_id), None)

    async def comments(self, issue_id: str, *, internal: bool) -> list[Comment]:
        return [copy.copy(c) for c in sorted(self.s.comments.values(),
                                            key=lambda c: (c.created_at, c.id))
                if c.issue_id == issue_id and c.deleted_at is None
                and (internal or c.public)]

    async def update_comment(self, comment: Comment) -> None:
        self.s.comments[comment.id] = copy.copy(comment)

    async def add_attachment(self, attachment: Attachment) -> None:
        self.s.attachments[attachment.id] = copy.copy(attachment)

    async def get_attachment(self, issue_id: str, attachment_id: str) -> Attachment | None:
        found = self.s.attachments.get(attachment_id)
        return copy.copy(found) if found and found.issue_id == issue_id \
            and found.deleted_at is None else None

    async def attachment_by_external_id(self, issue_id: str,
                                        external_id: str) -> Attachment | None:
        return next((copy.copy(a) for a in self.s.attachments.values()
                     if a.issue_id == issue_id and a.external_id == external_id), None)

    async def attachments(self, issue_id: str) -> list[Attachment]:
        return [copy.copy(a) for a in sorted(self.s.attachments.values(),
                                            key=lambda a: (a.created_at, a.id))
                if a.issue_id == issue_id and a.deleted_at is None]

    async def update_attachment(self, attachment: Attachment) -> None:
        self.s.attachments[attachment.id] = copy.copy(attachment)


class _SupportDeliveries:
    def __init__(self, state: _State) -> None:
        self.s = state

    async def queue(self, delivery: SupportDelivery) -> None:
        self.s.deliveries[delivery.id] = copy.copy(delivery)

    async def claim(self, now: datetime, lease_until: datetime,
                    limit: int) -> list[SupportDelivery]:
        due = sorted((d for d in self.s.deliveries.values() if d.status is Delivery.PENDING
                      and d.next_attempt_at <= now
                      and self.s.delivery_leases.get(d.id, now) <= now),
                     key=lambda d: (d.next_attempt_at, d.id))[:limit]
        for delivery in due:
            self.s.delivery_leases[delivery.id] = lease_until
        return [copy.copy(d) for d in due]

    def _change(self, delivery_id: str, **changes: Any) -> None:
        self.s.delivery_leases.pop(delivery_id, None)
        self.s.deliveries[delivery_id] = replace(self.s.deliveries[delivery_id], **changes)

    async def done(self, delivery_id: str) -> None:
        self._change(delivery_id, status=Delivery.DELIVERED, last_error=None)

    async def retry_later(self, delivery_id: str, attempts: int, at: datetime,
                          error: str | None) -> None:
        self._change(delivery_id, attempts=attempts, next_attempt_at=at, last_error=error)

    async def give_up(self, delivery_id: str, attempts: int, error: str) -> None:
        self._change(delivery_id, status=Delivery.FAILED, attempts=attempts, last_error=error)

    async def failed(self, limit: int) -> list[SupportDelivery]:
        return sorted((copy.copy(d) for d in self.s.deliveries.values()
                       if d.status is Delivery.FAILED),
                      key=lambda d: (d.created_at, d.id), reverse=True)[:limit]

    async def pending_for(self, issue_id: str) -> int:
        return sum(1 for d in self.s.deliveries.values()
                   if d.issue_id == issue_id and d.status is Delivery.PENDING)

    async def backlog(self) -> tuple[int, datetime | None]:
        waiting = [d.created_at for d in self.s.deliveries.values()
                   if d.status is Delivery.PENDING]
        return len(waiting), min(waiting, default=None)

    async def cursor(self, name: str) -> str | None:
        return self.s.cursors.get(name)

    async def set_cursor(self, name: str, value: str) -> None:
        self.s.cursors[name] = value


class _ReportSubscriptions:
    def __init__(self, state: _State) -> None:
        self.s = state

    async def add(self, subscription: ReportSubscription) -> None:
        self.s.subscriptions[subscription.id] = subscription

    async def get(self, subscription_id: str) -> ReportSubscription | None:
        return self.s.subscriptions.get(subscription_id)

    async def of_user(self, user_id: str) -> list[ReportSubscription]:
        return sorted((s for s in self.s.subscriptions.values() if s.user_id == user_id),
                      key=lambda s: (s.created_at, s.id))

    async def due(self, period_weekly: str, period_monthly: str, after: str | None,
                  limit: int) -> list[ReportSubscription]:
        found = [s for s in sorted(self.s.subscriptions.values(), key=lambda s: s.id)
                 if (after is None or s.id > after) and (s.id, period_weekly if
                     s.cadence is Cadence.WEEKLY else period_monthly)
                 not in self.s.report_periods]
        return found[:limit]

    async def claim(self, subscription_id: str, period: str, at: datetime) -> bool:
        if (subscription_id, period) in self.s.report_periods:
            return False
        self.s.report_periods.add((subscription_id, period))
        return True

    async def delete(self, subscription_id: str) -> None:
        self.s.subscriptions.pop(subscription_id, None)
        self.s.report_periods = {p for p in self.s.report_periods if p[0] != subscription_id}


class FakeUnitOfWork:
    def __init__(self, storage: FakeStorage, events: EventLog | None = None, *,
                 read_only: bool = False) -> None:
        self._storage = storage
        self._read_only = read_only
        self._state = copy.deepcopy(storage.state)
        self.cabinets = _Cabinets(self._state)
        self.products = _Products(self._state)
        self.licenses = _Documents("licenses", self._state.licenses, self._state)
        self.certificates = _Documents("certificates", self._state.certificates, self._state)
        self.transfers = _Transfers(self._state)
        self.purchases = _PurchaseEvents(self._state)
        self.releases = _Releases(self._state)
        self.notifications = _Notifications(self._state)
        self.outbox = _Outbox(self._state)
        self.reminders = _Reminders(self._state)
        self.users = _Users(self._state)
        self.sessions = _Sessions(self._state)
        self.audit = _Audit(self._state)
        self.login_throttle = _Throttle(self._state)
        self.support = _Support(self._state)
        self.support_deliveries = _SupportDeliveries(self._state)
        self.report_subscriptions = _ReportSubscriptions(self._state)
        self.events = events or EventLog()

    async def try_lock(self, name: str) -> bool:
        """One test, one task: a lock another "process" holds is one a test put there."""
        if self._read_only:
            raise RuntimeError("a read-only unit of work holds no transaction to lock in")
        return name not in self._storage.held_locks

    async def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work commits nothing")
        await self.events.commit(self, self._commit)

    async def _commit(self) -> None:
        self._storage.state = copy.deepcopy(self._state)


class FakeStorage:
    def __init__(self) -> None:
        self.state = _State()
        # Locks held elsewhere (by another process, as far as a use case can tell).
        self.held_locks: set[str] = set()

    @asynccontextmanager
    async def unit_of_work(self, events: EventLog | None = None, *, read_only: bool = False
                           ) -> AsyncIterator[FakeUnitOfWork]:
        yield FakeUnitOfWork(self, events, read_only=read_only)

    async def ping(self) -> None:
        return None

    async def pending_migrations(self) -> list[str]:
        return []

    async def migrate(self) -> list[str]:
        return []
