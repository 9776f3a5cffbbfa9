"""Storage port: repositories and a unit of work that rolls back unless committed.

Every method that reads tenant data takes the caller's `Scope` (see app.domain.access);
an object outside the scope is reported as absent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime
from typing import Any, Protocol, TypeVar

from app.domain.access import Scope
from app.domain.audit import AuditEntry
from app.domain.cabinets import Cabinet
from app.domain.events import DomainEvent
from app.domain.licensing import Certificate, DocumentFilter, DocumentKind, License, Transfer
from app.domain.notifications import Batch, Message, Notification, NotificationKind, Preference
from app.domain.outbox import OutboxMessage
from app.domain.paging import PageRequest
from app.domain.products import Product
from app.domain.releases import Artifact, Release
from app.domain.reminders import DueDocument
from app.domain.sessions import LoginSession
from app.domain.users import User


class StorageError(Exception):
    """Base of the errors a storage adapter raises."""


class StorageUnavailable(StorageError):
    """The database cannot be reached or timed out; nothing was written."""


class ConcurrentUpdate(StorageError):
    """Another transaction changed the same rows at the same moment; nothing was written.
    Trying again usually succeeds."""


class DuplicateKey(StorageError):
    """A unique key is taken. `key` names it as the schema does, e.g. "users.email_key"."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class CabinetRepository(Protocol):
    async def add(self, cabinet: Cabinet) -> None:
        """Insert; DuplicateKey("cabinets.external_id") when the billing id is taken."""

    async def get(self, cabinet_id: str, scope: Scope, *,
                  for_update: bool = False) -> Cabinet | None:
        """With `for_update`, the row stays locked against other writers until the unit of
        work ends (moves and new children of one cabinet then happen one after another)."""

    async def get_by_external_id(self, external_id: str, scope: Scope) -> Cabinet | None: ...

    async def get_many(self, cabinet_ids: list[str], scope: Scope) -> list[Cabinet]:
        """The cabinets among `cabinet_ids` in scope, in id order."""

    async def list_visible(self, scope: Scope, page: PageRequest) -> list[Cabinet]:
        """Up to page.limit + 1 cabinets in scope after page.after, in id (creation) order."""

    async def children(self, parent_id: str, scope: Scope, page: PageRequest) -> list[Cabinet]:
        """Direct children, paged like `list_visible`."""

    async def update(self, cabinet: Cabinet) -> None:
        """Write name, kind, external_id and updated_at."""

    async def move(self, cabinet: Cabinet, new_parent: Cabinet | None, at: datetime) -> Cabinet:
        """Re-parent `cabinet` and rewrite the paths of its whole subtree; returns it moved."""


class ProductRepository(Protocol):
    """The catalogue is the vendor's, not a tenant's: it takes no Scope."""

    async def add(self, product: Product) -> None:
        """Insert; DuplicateKey("products.code") when the code is taken."""

    async def get(self, product_id: str) -> Product | None: ...

    async def get_by_code(self, code: str) -> Product | None: ...

    async def get_many(self, product_ids: list[str]) -> list[Product]: ...

    async def list_page(self, page: PageRequest, *, include_inactive: bool) -> list[Product]:
        """Up to page.limit + 1 products after page.after, in id (creation) order."""

    async def update(self, product: Product) -> None:
        """Write every field but the code and the creation time."""


D = TypeVar("D", License, Certificate)


class DocumentRepository(Protocol[D]):
    """Licenses, or support certificates: the same questions of either table."""

    async def add(self, document: D) -> None:
        """Insert; DuplicateKey("<table>.number") or ("<table>.purchase_item") when taken."""

    async def get(self, document_id: str, scope: Scope, *, for_update: bool = False) -> D | None:
        """One held by a cabinet in scope; `for_update` locks it until the unit of work ends."""

    async def get_by_number(self, number: str, scope: Scope) -> D | None: ...

    async def get_by_purchase_item(self, purchase_item: str, scope: Scope,
                                   *, for_update: bool = False) -> D | None: ...

    async def number_taken(self, number: str) -> bool: ...

    async def list_visible(self, scope: Scope, filters: DocumentFilter,
                           page: PageRequest) -> list[D]:
        """Held by cabinets in scope and passing the filters, paged in id order."""

    async def update(self, document: D) -> None:
        """Write the owner, the validity, the revocation and the kind's own fields."""


class TransferRepository(Protocol):
    async def add(self, transfer: Transfer) -> None: ...

    async def of_document(self, document_id: str) -> list[Transfer]:
        """Its history, oldest first."""


class ReleaseRepository(Protocol):
    """Releases with their artifacts. The catalogue is the vendor's: no Scope here; who may
    download what is the entitlement rule's question."""

    async def add(self, release: Release) -> bool:
        """Insert the release and its artifacts; False (and nothing written) when the
        product has this version already, also when another writer adds it concurrently."""

    async def get(self, release_id: str) -> Release | None: ...

    async def get_by_version(self, product_id: str, version: str) -> Release | None: ...

    async def versions(self, product_id: str) -> set[str]: ...

    async def list_for_product(self, product_id: str, page: PageRequest,
                               include_yanked: bool = True) -> list[Release]:
        """Newest published first (ties by id), paged by the last id seen."""

    async def get_artifact(self, artifact_id: str) -> tuple[Release, Artifact] | None: ...

    async def set_yanked(self, release_id: str, at: datetime | None) -> None: ...


class NotificationRepository(Protocol):
    """A user's notifications. Every method takes the owner: nobody reaches another's."""

    async def next_position(self) -> int:
        """Take the portal's next notification position. Until this transaction ends,
        whoever takes the one after waits: positions are committed in the order taken."""

    async def position(self) -> int:
        """The newest position taken and committed (0 before the first)."""

    async def add(self, user_ids: list[str], message: Message, ids: list[str],
                  at: datetime) -> list[Notification]:
        """One notification per user (ids[i] for user_ids[i]), all at the next position."""

    async def write(self, batch: Batch) -> None:
        """The batch's notification for each of its users, at its position."""

    async def hold(self, batch: Batch) -> None:
        """Keep a batch to be written later (see `held`)."""

    async def held(self, limit: int) -> list[Batch]:
        """The batches kept and not yet released, oldest first, locked until this
        transaction ends: two writers never write one twice."""

    async def waiting_for(self, user_id: str, up_to: int) -> list[Batch]:
        """`waiting`, only those for this user, each with this user alone."""

    async def waiting(self, up_to: int) -> list[Batch]:
        """The batches held and not yet written, up to position `up_to`, without locking
        them: a reader counts them in instead of waiting for them."""

    async def release(self, position: int) -> None:
        """Forget a held batch, once written."""

    async def since(self, position: int, up_to: int, user_ids: list[str],
                    limit: int) -> list[Notification]:
        """These users' notifications from `position` to `up_to`, in position order (at
        most `limit`): what live streams missed when the event bus lost a message."""

    async def list_for_user(self, user_id: str, page: PageRequest, unread_only: bool = False,
                            up_to: int = ..., below: int | None = None
                            ) -> list[Notification]:
        """Newest first, paged by the last id seen (or only those below position `below`);
        none past position `up_to`."""

    async def position_of(self, user_id: str, notification_id: str) -> int | None:
        """The position of one of the user's notifications (None if not theirs)."""

    async def after(self, user_id: str, seq: int, limit: int,
                    up_to: int = ...) -> list[Notification]:
        """Those after position `seq` up to `up_to`, oldest first: what a reconnecting
        stream missed."""

    async def unread_count(self, user_id: str, up_to: int = ...,
                           excluding: tuple[int, ...] = ()) -> int:
        """Unread up to position `up_to`, not counting those at the `excluding` positions."""

    async def set_read(self, user_id: str, notification_id: str,
                       at: datetime | None) -> Notification | None:
        """Mark read (at) or unread (None); the notification, or None if not theirs."""

    async def read_all(self, user_id: str, at: datetime) -> int: ...

    async def delete(self, user_id: str, notification_id: str) -> bool: ...

    async def preferences(self, user_id: str) -> dict[NotificationKind, Preference]:
        """Only what the user chose; kinds left out keep their defaults."""

    async def set_preferences(self, user_id: str,
                              chosen: dict[NotificationKind, Preference]) -> None: ...

    async def muted(self, kind: NotificationKind) -> set[str]:
        """Users who turned this kind off in the portal."""

    async def recipients_in(self, cabinet_ids: list[str]) -> list[str]:
        """Active users of these cabinets."""

    async def recipients_licensed(self, product_id: str, on: date, today: date) -> list[str]:
        """Active users of the cabinets holding a non-revoked license of the product valid
        on `on` or `today`: those entitled to a release published on `on`."""

    async def mail_targets(self, user_ids: list[str],
                           kind: NotificationKind) -> list[tuple[str, str, str]]:
        """(user id, e-mail, name) of those users, active, who did not turn e-mail off for
        this kind."""

    async def recipients_all(self) -> list[str]:
        """Every active user."""


class OutboxRepository(Protocol):
    async def add(self, *messages: OutboxMessage) -> None:
        """Queue messages; a Message-ID already queued is left as it is."""

    async def claim(self, now: datetime, lease_until: datetime,
                    limit: int) -> list[OutboxMessage]:
        """Pending messages due by `now` and not leased, leased to the caller until
        `lease_until`, oldest first. Concurrent claimers never get the same message."""

    async def mark_sent(self, message_id: str, at: datetime) -> None:
        """Sent. Its text is forgotten (an invitation's holds a set-password link);
        recipient, subject and times stay."""

    async def retry_later(self, message_id: str, attempts: int, at: datetime,
                          error: str) -> None:
        """Count a failed attempt and try again at `at`."""

    async def mark_failed(self, message_id: str, attempts: int, error: str) -> None:
        """Give up on it, keeping the reason; its text is forgotten as when sent."""

    async def get(self, message_id: str) -> OutboxMessage | None: ...

    async def list_recent(self, limit: int, recipient: str = "") -> list[OutboxMessage]:
        """Newest first: for staff who check what was sent; `recipient`: only those whose
        recipient contains it (case-insensitive)."""


class ReminderRepository(Protocol):
    async def due(self, kind: DocumentKind, stage: int, first: date, last: date,
                  limit: int) -> list[DueDocument]:
        """Documents of this kind ending between first and last (inclusive), not revoked,
        not yet reminded at this stage or a nearer one for their present end date."""

    async def mark(self, document: DueDocument, stage: int, at: datetime) -> bool:
        """Record the reminder; False when it was already recorded."""

    async def recipients(self, cabinet_id: str) -> list[str]:
        """Who hears of a cabinet's documents: its active users and the admins of the
        customer cabinets above it."""


class PurchaseEventRepository(Protocol):
    async def claim(self, event_id: str, type_: str, occurred_at: datetime,
                    received_at: datetime) -> bool:
        """Record the event id; False if it was recorded before. A concurrent claim of the
        same id waits until the first one's unit of work ends, then answers False if that
        one committed, True if it rolled back."""

    async def record_outcome(self, event_id: str, outcome: dict[str, Any]) -> None: ...

    async def outcome(self, event_id: str) -> dict[str, Any] | None: ...


class UserRepository(Protocol):
    async def add(self, user: User) -> None:
        """Insert; DuplicateKey("users.email_key") when the e-mail is taken."""

    async def get(self, user_id: str, scope: Scope, *, for_update: bool = False) -> User | None:
        """A live (not deleted) user whose cabinet is in scope; `for_update` locks the row
        until the unit of work ends, so concurrent changes do not overwrite each other."""

    async def get_by_email_key(self, key: str) -> User | None:
        """A live user by lower-cased e-mail, whatever their cabinet: for sign-in only."""

    async def list_in_cabinet(self, cabinet_id: str, scope: Scope,
                              page: PageRequest) -> list[User]: ...

    async def update(self, user: User) -> None:
        """Write every mutable field (name, role, active, password hash, deletion)."""


class SessionRepository(Protocol):
    async def add(self, session: LoginSession) -> None: ...

    async def get(self, session_id: str) -> LoginSession | None: ...

    async def revoke(self, session_id: str, at: datetime) -> None: ...

    async def revoke_all_of_user(self, user_id: str, at: datetime) -> None: ...

    async def add_refresh_token(self, jti: str, session_id: str, expires_at: datetime) -> None: ...

    async def use_refresh_token(self, jti: str, session_id: str, at: datetime) -> bool:
        """Mark the token used. False when it was used before or is unknown: exactly one of
        several concurrent callers with the same token gets True."""

    async def refresh_token_used_at(self, jti: str, session_id: str) -> datetime | None:
        """When the token was spent; None if it is unknown or unspent."""

    async def add_password_token(self, token_hash: str, user_id: str,
                                 expires_at: datetime) -> None: ...

    async def password_token_user(self, token_hash: str, at: datetime) -> str | None:
        """The user id of an unused, unexpired password token, without spending it."""

    async def use_password_token(self, token_hash: str, at: datetime) -> str | None:
        """Consume a one-time password token; its user id, or None if unknown, used or expired."""


class AuditRepository(Protocol):
    async def add(self, entry: AuditEntry) -> None: ...

    async def list_visible(self, scope: Scope, page: PageRequest,
                           object_id: str | None = None,
                           action: str | None = None) -> list[AuditEntry]:
        """Entries about cabinets in scope (staff: also entries with no cabinet), newest last."""


class LoginThrottleRepository(Protocol):
    """Sign-in attempts per key (an account or an address) in fixed windows."""

    async def hit(self, key: str, now: datetime, expired: datetime) -> tuple[int, datetime]:
        """Count one attempt; a window that began at or before `expired` starts afresh at
        `now`. The attempts of the current window, this one included, and when the window
        began. Atomic: concurrent callers each get a different count."""

    async def forgive(self, key: str) -> None:
        """Take one attempt back (it turned out to be a successful sign-in)."""

    async def reset(self, key: str) -> None: ...

    async def prune(self, before: datetime) -> None:
        """Forget windows that began before `before`."""


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
    def unit_of_work(self, events: EventLog | None = None
                     ) -> AbstractAsyncContextManager[UnitOfWork]:
        """A transaction recording its events on `events` (a new log if None);
        StorageUnavailable when no connection can be had in time."""

    async def ping(self) -> None:
        """Raise StorageUnavailable unless the database answers a trivial query."""

    async def pending_migrations(self) -> list[str]: ...

    async def migrate(self) -> list[str]:
        """Apply pending migrations in order, each once even with concurrent callers;
        the names of those applied."""
