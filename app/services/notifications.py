"""Notifications: written in the same transaction as the change that causes them, read and
managed by their owner, announced by staff, and streamed live.

The event bus only says "these were created"; storage is the record, so a stream that
misses a wake-up catches up from storage and nothing is lost with the bus.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import assert_never

from app.domain import access
from app.domain.cabinets import Cabinet
from app.domain.errors import Forbidden, Invalid, NotFound
from app.domain.events import (
    DocumentIssued,
    DocumentRenewed,
    DocumentRevoked,
    DocumentTransferred,
    DomainEvent,
    MailQueued,
    NotificationsCreated,
    ReleasePublished,
    UserInvited,
)
from app.domain.licensing import DocumentKind
from app.domain.notifications import (
    Batch,
    Message,
    Notification,
    NotificationKind,
    Preference,
    preferences,
)
from app.domain.outbox import OutboxMessage
from app.domain.paging import MAX_LIMIT, Page, PageRequest
from app.domain.products import Product
from app.domain.releases import ReleaseKind
from app.domain.users import Principal
from app.services.mail import EmailComposer
from app.services.work import Transactions, UseCases
from ports.storage import UnitOfWork
from ports.system import Clock, IdGenerator

MAX_TITLE, MAX_BODY = 200, 5000
# Up to this many recipients, a message's notifications and e-mail are written in the
# transaction that makes it; to more, it is held as one batch and written just after, so
# the live streams have it without waiting for thousands of rows.
INLINE_RECIPIENTS = 100
BATCHES_AT_ONCE = 10
MAIL_AT_ONCE = 500


@dataclass(frozen=True)
class Told:
    """Whom an event is told to, and what; `email`: also by e-mail, per their settings."""

    users: list[str]
    message: Message
    email: bool = True


class Notifier:
    """Turns a unit of work's domain events into notifications, and into e-mail in the
    outbox, before it commits: the change and its notifications (or the batch they are
    written from) are one transaction, so none is lost and none is sent for a change that
    rolled back."""

    def __init__(self, clock: Clock, ids: IdGenerator, composer: EmailComposer) -> None:
        self._clock = clock
        self._ids = ids
        self._composer = composer

    async def prepare(self, uow: UnitOfWork, events: list[DomainEvent]) -> None:
        """The unit of work's step before it commits (see ports.storage.EventLog)."""
        for event in events:
            told = await self.decide(uow, event)
            if told is not None:
                await self.send(uow, told.users, told.message, email=told.email)

    async def send(self, uow: UnitOfWork, user_ids: list[str], message: Message, *,
                   email: bool = True) -> int:
        """A notification for each user who has not turned this kind off in the portal,
        an e-mail (with `email`) for each who has not turned it off by e-mail, and the
        event for the live streams; how many are told in the portal."""
        everyone = tuple(dict.fromkeys(user_ids))
        if not everyone:
            return 0
        muted = await uow.notifications.muted(message.kind)
        now = self._clock.now()
        batch = Batch(position=await uow.notifications.next_position(),
                      id=self._ids.new_id(), message=message, created_at=now,
                      users=tuple(u for u in everyone if u not in muted),
                      audience=everyone if email else ())
        held = len(everyone) > INLINE_RECIPIENTS
        if held:
            await uow.notifications.hold(batch)
        else:
            await self._write(uow, batch)
        uow.events.record(NotificationsCreated(batch=replace(batch, audience=()), held=held))
        return len(batch.users)

    async def spread(self, uow: UnitOfWork) -> int:
        """Write the notifications and e-mail of the batches held for later; how many."""
        done = 0
        while batches := await uow.notifications.held(BATCHES_AT_ONCE):
            for batch in batches:
                await self._write(uow, batch)
                await uow.notifications.release(batch.position)
            done += len(batches)
        return done

    async def _write(self, uow: UnitOfWork, batch: Batch) -> None:
        await uow.notifications.write(batch)
        targets = await uow.notifications.mail_targets(list(batch.audience), batch.message.kind)
        # A few hundred at a time: the process's live streams are served in between.
        for start in range(0, len(targets), MAIL_AT_ONCE):
            await uow.outbox.add(*[
                self._composer.notification(batch.notification_id(user_id), address, name,
                                            batch.message, batch.created_at)
                for user_id, address, name in targets[start:start + MAIL_AT_ONCE]])
        if targets:
            uow.events.record(MailQueued(count=len(targets)))

    async def decide(self, uow: UnitOfWork, event: DomainEvent) -> Told | None:
        """Who hears of an event, and what they are told. Every event has its answer here:
        one without fails mypy (assert_never)."""
        match event:
            case ReleasePublished():
                users = await uow.notifications.recipients_licensed(
                    event.product_id, event.published_on, self._clock.now().date())
                return Told(users, release_message(event))
            case DocumentIssued():
                what = _what(event.kind).lower()
                until = f", valid until {event.valid_to}" if event.valid_to else ""
                return Told(await uow.notifications.recipients_in(list(event.cabinet_ids)),
                            Message(NotificationKind.LICENSE_ISSUED,
                                    f"New {what} {event.number}",
                                    f"A {what} for {event.product_name or 'your product'} was "
                                    f"issued{until}.", _link(event.kind, event.document_id)))
            case DocumentRenewed():
                until = f"until {event.valid_to}" if event.valid_to else "without an end"
                return Told(await uow.notifications.recipients_in(list(event.cabinet_ids)),
                            Message(NotificationKind.LICENSE_RENEWED,
                                    f"{event.number} renewed",
                                    f"{_what(event.kind)} {event.number} is valid {until} now.",
                                    _link(event.kind, event.document_id)))
            case DocumentRevoked():
                return Told(await uow.notifications.recipients_in(list(event.cabinet_ids)),
                            Message(NotificationKind.LICENSE_REVOKED,
                                    f"{event.number} revoked",
                                    f"{_what(event.kind)} {event.number} was revoked and is "
                                    "no longer valid.", _link(event.kind, event.document_id)))
            case DocumentTransferred():
                license_ = event.kind is DocumentKind.LICENSE
                return Told(await uow.notifications.recipients_in(
                    list(dict.fromkeys((event.from_cabinet_id, event.to_cabinet_id)))),
                    Message(NotificationKind.LICENSE_TRANSFERRED if license_
                            else NotificationKind.CERTIFICATE_TRANSFERRED,
                            f"{event.number} moved to {event.to_name}",
                            f"{_what(event.kind)} {event.number} was transferred from "
                            f"{event.from_name} to {event.to_name}.",
                            "/licenses" if license_ else "/certificates"))
            case UserInvited():
                # What greets them once they are in, in the portal only: the invitation
                # itself was their e-mail.
                return Told([event.user_id], Message(
                    NotificationKind.USER_INVITED,
                    f"Welcome to the {self._composer.brand} portal",
                    f"{event.inviter_name} invited you to {event.cabinet_name}. Choose here "
                    "which news reach you in the portal and by e-mail.",
                    "/notifications/settings"), email=False)
            case NotificationsCreated() | MailQueued():
                return None  # what telling people makes: nothing more to tell
            case _:
                assert_never(event)


def release_message(event: ReleasePublished) -> Message:
    link = f"/products/{event.product_id}#release-{event.release_id}"
    if event.kind is ReleaseKind.SECURITY:
        return Message(NotificationKind.SECURITY_PUBLISHED, f"Security fix: {event.title}",
                       f"{event.product_name} {event.version} fixes a security "
                       "vulnerability. Install it soon.", link)
    return Message(NotificationKind.RELEASE_PUBLISHED, f"{event.title} is out",
                   f"{event.product_name} {event.version} ({event.kind.value}) is ready to "
                   "download.", link)


def _what(kind: DocumentKind) -> str:
    return "License" if kind is DocumentKind.LICENSE else "Support certificate"


def _link(kind: DocumentKind, document_id: str) -> str:
    return f"/{'licenses' if kind is DocumentKind.LICENSE else 'certificates'}/{document_id}"


@dataclass(frozen=True)
class Audience:
    """Who an announcement goes to: everyone, one cabinet's users, or a product's
    licensees."""

    cabinet_id: str | None = None
    product_id: str | None = None


class NotificationService(UseCases):
    def __init__(self, work: Transactions, clock: Clock, ids: IdGenerator,
                 notifier: Notifier) -> None:
        super().__init__(work, clock, ids)
        self._notifier = notifier

    async def spread_held(self) -> int:
        """Write the batches held for later (announcements to many); how many."""
        async with self._work() as uow:
            done = await self._notifier.spread(uow)
            await uow.commit()
        return done

    async def list_own(self, actor: Principal, page: PageRequest,
                       unread_only: bool = False) -> tuple[Page[Notification], int]:
        user_id = _user(actor)
        async with self._work() as uow:
            view = await _view(uow, user_id)
            held = view.held_for(user_id)
            below: int | None = None
            if page.after is not None:
                below = next((n.seq for n in held if n.id == page.after), None)
                if below is None:
                    below = await uow.notifications.position_of(user_id, page.after)
                if below is None:  # not a notification of theirs: nothing after it
                    return Page.from_rows([], page), await self._unread(uow, user_id, view)
            rows = await uow.notifications.list_for_user(
                user_id, PageRequest(limit=page.limit), unread_only, up_to=view.newest,
                below=below)
            merged = _merged(rows, [n for n in held if below is None or n.seq < below])
            unread = await self._unread(uow, user_id, view)
        return Page.from_rows(merged[::-1][:page.limit + 1], page), unread

    async def after(self, actor: Principal, seq: int, limit: int) -> list[Notification]:
        """What came after position `seq`, oldest first: a reconnecting stream's replay."""
        user_id = _user(actor)
        async with self._work() as uow:
            view = await _view(uow, user_id)
            rows = await uow.notifications.after(user_id, seq, limit, up_to=view.newest)
        return _merged(rows, [n for n in view.held_for(user_id) if n.seq > seq])[:limit]

    async def since(self, position: int, user_ids: list[str],
                    limit: int) -> tuple[list[Notification], int]:
        """These users' notifications from `position` on, and the position read up to: for
        live streams to catch up. Only reads: it never waits for, or writes, a batch."""
        async with self._work() as uow:
            view = await _view(uow)
            rows = await uow.notifications.since(position, view.newest, user_ids, limit)
        wanted = set(user_ids)
        held = [batch.notification(user_id) for batch in view.waiting
                if batch.position >= position for user_id in batch.users if user_id in wanted]
        return _merged(rows, held, everyone=True)[:limit], view.newest

    async def position(self) -> int:
        """The newest notification's position: a new stream starts after it."""
        async with self._work() as uow:
            return await uow.notifications.position()

    async def unread_count(self, actor: Principal) -> int:
        user_id = _user(actor)
        async with self._work() as uow:
            return await self._unread(uow, user_id, await _view(uow, user_id))

    async def _unread(self, uow: UnitOfWork, user_id: str, view: _View) -> int:
        held = tuple(n.seq for n in view.held_for(user_id))
        return len(held) + await uow.notifications.unread_count(user_id, up_to=view.newest,
                                                                excluding=held)

    async def mark(self, actor: Principal, notification_id: str, read: bool) -> Notification:
        user_id = _user(actor)
        async with self._work() as uow:
            at = self._clock.now() if read else None
            found = await uow.notifications.set_read(user_id, notification_id, at)
            if found is None and await self._write_held(uow, user_id, notification_id):
                found = await uow.notifications.set_read(user_id, notification_id, at)
            if found is None:
                raise NotFound("No such notification.")
            await uow.commit()
        return found

    async def read_all(self, actor: Principal) -> int:
        user_id = _user(actor)
        async with self._work() as uow:
            await self._write_held(uow, user_id)
            count = await uow.notifications.read_all(user_id, self._clock.now())
            await uow.commit()
        return count

    async def delete(self, actor: Principal, notification_id: str) -> None:
        user_id = _user(actor)
        async with self._work() as uow:
            deleted = await uow.notifications.delete(user_id, notification_id)
            if not deleted and await self._write_held(uow, user_id, notification_id):
                deleted = await uow.notifications.delete(user_id, notification_id)
            if not deleted:
                raise NotFound("No such notification.")
            await uow.commit()

    async def _write_held(self, uow: UnitOfWork, user_id: str,
                          notification_id: str | None = None) -> bool:
        """A change to a notification still held (or to all of a user's) writes the held
        batches first; whether there was one to write."""
        held = (await _view(uow, user_id)).held_for(user_id)
        if not any(notification_id in (None, n.id) for n in held):
            return False
        await self._notifier.spread(uow)
        return True

    async def preferences(self, actor: Principal) -> dict[NotificationKind, Preference]:
        async with self._work() as uow:
            return preferences(await uow.notifications.preferences(_user(actor)))

    async def set_preferences(self, actor: Principal, chosen: dict[NotificationKind, Preference]
                              ) -> dict[NotificationKind, Preference]:
        async with self._work() as uow:
            await uow.notifications.set_preferences(_user(actor), chosen)
            stored = await uow.notifications.preferences(_user(actor))
            await uow.commit()
        return preferences(stored)

    async def recent_mail(self, actor: Principal, recipient: str = "",
                          limit: int = 100) -> list[OutboxMessage]:
        """Staff: the latest e-mail in the outbox (to `recipient`, a part of an address or
        name), sent, waiting or given up, with why."""
        access.require_may_read_mail_log(actor)
        async with self._work() as uow:
            return await uow.outbox.list_recent(limit, recipient.strip()[:200])

    async def audiences(self, actor: Principal) -> tuple[list[Product], list[Cabinet]]:
        """Staff: what an announcement may go to, besides everyone: a product's licensees,
        or one cabinet's users."""
        access.require_may_announce(actor)
        async with self._work() as uow:
            products = await uow.products.list_page(PageRequest(MAX_LIMIT),
                                                    include_inactive=True)
            cabinets = await uow.cabinets.list_visible(access.visible_scope(actor),
                                                       PageRequest(MAX_LIMIT))
        return products[:MAX_LIMIT], cabinets[:MAX_LIMIT]

    async def announce(self, actor: Principal, title: str, body: str, link: str | None,
                       audience: Audience) -> int:
        """Staff tell everyone, one cabinet's users, or a product's licensees; how many
        were told."""
        access.require_may_announce(actor)
        if audience.cabinet_id and audience.product_id:
            raise Invalid("Name a cabinet or a product, not both.", field="cabinet_id")
        title, body, link = title.strip(), body.strip(), (link or "").strip() or None
        if not title or not body:
            raise Invalid("Write a title and a message.", field="title" if not title else "body")
        if len(title) > MAX_TITLE or len(body) > MAX_BODY:
            raise Invalid(f"A title has at most {MAX_TITLE} characters, a message {MAX_BODY}.",
                          field="title" if len(title) > MAX_TITLE else "body")
        if link and not link.startswith(("/", "https://")):
            raise Invalid("A link is a portal path (/licenses) or an https:// address.",
                          field="link")
        today = self._clock.now().date()
        async with self._work() as uow:
            if audience.cabinet_id:
                if await uow.cabinets.get(audience.cabinet_id, access.visible_scope(actor)) \
                        is None:
                    raise NotFound("No such cabinet.", field="cabinet_id")
                users = await uow.notifications.recipients_in([audience.cabinet_id])
            elif audience.product_id:
                if await uow.products.get(audience.product_id) is None:
                    raise NotFound("No such product.", field="product_id")
                users = await uow.notifications.recipients_licensed(audience.product_id,
                                                                    today, today)
            else:
                users = await uow.notifications.recipients_all()
            told = await self._notifier.send(uow, users, Message(
                NotificationKind.ANNOUNCEMENT, title, body, link))
            await uow.commit()
        return told


@dataclass(frozen=True)
class _View:
    """What a reader sees: every position up to `newest` is committed, as rows or as a
    batch still `waiting` to be written."""

    newest: int
    waiting: list[Batch]

    def held_for(self, user_id: str) -> list[Notification]:
        return [batch.notification(user_id) for batch in self.waiting
                if user_id in batch.users]


async def _view(uow: UnitOfWork, user_id: str | None = None) -> _View:
    """Everyone's view, or one user's (their held batches only)."""
    # The position first: everything up to it has committed, so a batch is then either
    # still held when the batches are read, or written before the rows are read.
    newest = await uow.notifications.position()
    if user_id is None:
        return _View(newest, await uow.notifications.waiting(newest))
    return _View(newest, await uow.notifications.waiting_for(user_id, newest))


def _merged(rows: list[Notification], held: list[Notification],
            everyone: bool = False) -> list[Notification]:
    """Oldest first, one per position (and user, for `everyone`'s): a batch written between
    the two reads is taken as a row."""
    found = {(n.seq, n.user_id if everyone else ""): n for n in held + rows}
    return [found[key] for key in sorted(found)]


def _user(actor: Principal) -> str:
    if not actor.user_id:
        raise Forbidden("Notifications belong to users.")
    return actor.user_id
