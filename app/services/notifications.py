"""Notifications: written in the same transaction as the change that causes them, read and
managed by their owner, announced by staff, and streamed live.

The event bus only says "these were created"; storage is the record, so a stream that
misses a wake-up catches up from storage and nothing is lost with the bus.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from app.domain import access
from app.domain.audit import AuditEntry, AuditFilter
from app.domain.cabinets import Cabinet
from app.domain.errors import Forbidden, Invalid, NotFound
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
from app.domain.users import Principal
from app.services.notifier import Notifier
from app.services.work import Transactions, UseCases
from ports.storage import UnitOfWork
from ports.system import Clock, IdGenerator

MAX_TITLE, MAX_BODY = 200, 5000


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

    async def list_own(self, actor: Principal, page: PageRequest, unread_only: bool = False,
                       kind: NotificationKind | None = None) -> tuple[Page[Notification], int]:
        """The caller's own, newest first (only unread, only of one kind), with how many
        the list holds in all (`Page.total`); and how many are unread."""
        user_id = _user(actor)
        async with self._work(read_only=True) as uow:
            view = await _view(uow, user_id)
            held = [n for n in view.held_for(user_id) if kind in (None, n.kind)
                    and (not unread_only or n.read_at is None)]
            below: int | None = None
            if page.after is not None:
                below = next((n.seq for n in held if n.id == page.after), None)
                if below is None:
                    below = await uow.notifications.position_of(user_id, page.after)
                if below is None:  # not a notification of theirs: nothing after it
                    return Page.from_rows([], page), await self._unread(uow, user_id, view)
            rows = await uow.notifications.list_for_user(
                user_id, PageRequest(limit=page.limit), unread_only, up_to=view.newest,
                below=below, kind=kind)
            merged = _merged(rows, [n for n in held if below is None or n.seq < below])
            unread = await self._unread(uow, user_id, view)
            # A batch written between the two reads is counted once: as a row.
            written = {n.seq for n in held} & {n.seq for n in rows}
            total = len(held) - len(written) + await uow.notifications.count_for_user(
                user_id, view.newest, unread_only, kind)
        listed = Page.from_rows(merged[::-1][:page.limit + 1], page)
        return replace(listed, total=total), unread

    async def after(self, actor: Principal, seq: int, limit: int) -> list[Notification]:
        """What came after position `seq`, oldest first: a reconnecting stream's replay."""
        user_id = _user(actor)
        async with self._work(read_only=True) as uow:
            view = await _view(uow, user_id)
            rows = await uow.notifications.after(user_id, seq, limit, up_to=view.newest)
        return _merged(rows, [n for n in view.held_for(user_id) if n.seq > seq])[:limit]

    async def since(self, position: int, user_ids: list[str],
                    limit: int) -> tuple[list[Notification], int]:
        """These users' notifications from `position` on, and the position read up to: for
        live streams to catch up. Only reads: it never waits for, or writes, a batch."""
        async with self._work(read_only=True) as uow:
            view = await _view(uow)
            rows = await uow.notifications.since(position, view.newest, user_ids, limit)
        wanted = set(user_ids)
        held = [batch.notification(user_id) for batch in view.waiting
                if batch.position >= position for user_id in batch.users if user_id in wanted]
        return _merged(rows, held, everyone=True)[:limit], view.newest

    async def position(self) -> int:
        """The newest notification's position: a new stream starts after it."""
        async with self._work(read_only=True) as uow:
            return await uow.notifications.position()

    async def unread_count(self, actor: Principal) -> int:
        user_id = _user(actor)
        async with self._work(read_only=True) as uow:
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
        async with self._work(read_only=True) as uow:
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
        async with self._work(read_only=True) as uow:
            return await uow.outbox.list_recent(limit, recipient.strip()[:200])

    async def audiences(self, actor: Principal) -> tuple[list[Product], list[Cabinet]]:
        """Staff: what an announcement may go to, besides everyone: a product's licensees,
        or one cabinet's users."""
        access.require_may_announce(actor)
        async with self._work(read_only=True) as uow:
            products = await uow.products.list_page(PageRequest(MAX_LIMIT),
                                                    include_inactive=True)
            cabinets = await uow.cabinets.list_visible(access.visible_scope(actor),
                                                       PageRequest(MAX_LIMIT))
        return products[:MAX_LIMIT], cabinets[:MAX_LIMIT]

    async def preview(self, actor: Principal, title: str, body: str, link: str | None,
                      audience: Audience) -> tuple[Message, int]:
        """What an announcement will say, and how many users it will reach in the portal,
        without sending it."""
        message = self._announcement(actor, title, body, link, audience)
        async with self._work(read_only=True) as uow:
            users, _ = await self._audience(uow, actor, audience)
            muted = await uow.notifications.muted(message.kind)
        return message, len(set(users) - set(muted))

    async def announce(self, actor: Principal, title: str, body: str, link: str | None,
                       audience: Audience) -> int:
        """Staff tell everyone, one cabinet's users, or a product's licensees; how many
        were told. It is audited with its audience and count: the announcements' history."""
        message = self._announcement(actor, title, body, link, audience)
        async with self._work() as uow:
            users, named = await self._audience(uow, actor, audience)
            told = await self._notifier.send(uow, users, message)
            await uow.audit.add(self._audit.entry(
                "notification.announced", actor, "announcement", None, None,
                title=message.title, audience=named, told=told))
            await uow.commit()
        return told

    async def announced(self, actor: Principal, page: PageRequest) -> Page[AuditEntry]:
        """The announcements sent so far, newest first."""
        access.require_may_announce(actor)
        async with self._work(read_only=True) as uow:
            rows = await uow.audit.list_visible(access.Scope.everything(), page,
                                                AuditFilter(action="notification.announced"))
        return Page.from_rows(rows, page)

    @staticmethod
    def _announcement(actor: Principal, title: str, body: str, link: str | None,
                      audience: Audience) -> Message:
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
        return Message(NotificationKind.ANNOUNCEMENT, title, body, link)

    async def _audience(self, uow: UnitOfWork, actor: Principal,
                        audience: Audience) -> tuple[list[str], str]:
        """Who an audience is, and its name as the history shows it."""
        today = self._clock.now().date()
        if audience.cabinet_id:
            cabinet = await uow.cabinets.get(audience.cabinet_id, access.visible_scope(actor))
            if cabinet is None:
                raise NotFound("No such organisation.", field="cabinet_id")
            return (await uow.notifications.recipients_in([audience.cabinet_id]),
                    f"the users of {cabinet.name}")
        if audience.product_id:
            product = await uow.products.get(audience.product_id)
            if product is None:
                raise NotFound("No such product.", field="product_id")
            return (await uow.notifications.recipients_licensed(audience.product_id, today,
                                                                today),
                    f"the users licensed for {product.name}")
        return await uow.notifications.recipients_all(), "every user"


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
