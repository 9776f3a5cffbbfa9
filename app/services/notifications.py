"""Notifications: written in the same transaction as the change that causes them, read and
managed by their owner, announced by staff, and streamed live.

The event bus only says "these were created"; storage is the record, so a stream that
misses a wake-up catches up from storage and nothing is lost with the bus.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from app.domain import access
from app.domain.errors import Forbidden, Invalid, NotFound
from app.domain.events import DomainEvent
from app.domain.notifications import (
    Message,
    Notification,
    NotificationKind,
    Preference,
    preferences,
)
from app.domain.outbox import OutboxMessage
from app.domain.paging import Page, PageRequest
from app.domain.users import Principal
from app.services.licensing import publish_all
from app.services.mail import EmailComposer
from ports.events import EventPublisher
from ports.storage import Storage, UnitOfWork
from ports.system import Clock, IdGenerator

CREATED = "notifications.created"
MAX_TITLE, MAX_BODY = 200, 5000


class Notifier:
    """Turns a unit of work's domain events into notifications, and into e-mail in the
    outbox, before it commits: the change, its notifications and its e-mail are one
    transaction, so none is lost and none is sent for a change that rolled back."""

    def __init__(self, clock: Clock, ids: IdGenerator, composer: EmailComposer) -> None:
        self._clock = clock
        self._ids = ids
        self._composer = composer

    async def record(self, uow: UnitOfWork) -> None:
        for event in list(uow.events):
            planned = await self._plan(uow, event)
            if planned is not None:
                await self.send(uow, *planned)

    async def send(self, uow: UnitOfWork, user_ids: list[str],
                   message: Message) -> list[Notification]:
        """A notification for each user who has not turned this kind off in the portal,
        an e-mail for each who has not turned it off by e-mail, and the wake-up for the
        live streams and the outbox worker."""
        everyone = list(dict.fromkeys(user_ids))
        muted = await uow.notifications.muted(message.kind)
        wanted = [u for u in everyone if u not in muted]
        now = self._clock.now()
        made = await uow.notifications.add(wanted, message,
                                           [self._ids.new_id() for _ in wanted], now) \
            if wanted else []
        keys = {n.user_id: n.id for n in made}
        mail = [self._composer.notification(keys.get(user_id) or self._ids.new_id(), address,
                                            name, message, now)
                for user_id, address, name in await uow.notifications.mail_targets(
                    everyone, message.kind)]
        await uow.outbox.add(*mail)
        mailed = len(mail)
        if made or mailed:
            uow.events.append(DomainEvent(CREATED, now, (), created_event(made, mailed)))
        return made

    async def _plan(self, uow: UnitOfWork,
                    event: DomainEvent) -> tuple[list[str], Message] | None:
        data, today = event.data, self._clock.now().date()
        if event.name in ("release.published", "security.published"):
            published = date.fromisoformat(str(data.get("published_on") or today.isoformat()))
            users = await uow.notifications.recipients_licensed(str(data["product_id"]),
                                                                published, today)
            link = f"/products/{data['product_id']}#release-{data['release_id']}"
            if event.name == "security.published":
                return users, Message(
                    NotificationKind.SECURITY_PUBLISHED, f"Security fix: {data['title']}",
                    f"{data['product']} {data['version']} fixes a security vulnerability. "
                    "Install it soon.", link)
            return users, Message(
                NotificationKind.RELEASE_PUBLISHED, f"{data['title']} is out",
                f"{data['product']} {data['version']} ({data['kind']}) is ready to download.",
                link)
        if event.name in ("license.issued", "certificate.issued"):
            license_ = event.name == "license.issued"
            what = "license" if license_ else "support certificate"
            until = f", valid until {data['valid_to']}" if data.get("valid_to") else ""
            return await uow.notifications.recipients_in(list(event.cabinet_ids)), Message(
                NotificationKind.LICENSE_ISSUED, f"New {what} {data['number']}",
                f"A {what} for {data.get('product') or 'your product'} was issued{until}.",
                f"/{'licenses' if license_ else 'certificates'}/{data['id']}")
        if event.name in ("license.transferred", "certificate.transferred"):
            license_ = event.name == "license.transferred"
            return await uow.notifications.recipients_in(list(event.cabinet_ids)), Message(
                NotificationKind.LICENSE_TRANSFERRED if license_
                else NotificationKind.CERTIFICATE_TRANSFERRED,
                f"{data['number']} moved to {data['to']}",
                f"{'License' if license_ else 'Support certificate'} {data['number']} was "
                f"transferred from {data['from']} to {data['to']}.",
                "/licenses" if license_ else "/certificates")
        return None


def created_event(made: list[Notification], mailed: int = 0) -> dict[str, Any]:
    """What the bus carries: enough to deliver without a query when nothing was missed,
    and whether the outbox has new mail."""
    if not made:
        return {"items": [], "mailed": mailed}
    first = made[0]
    return {"items": [[n.user_id, n.seq, n.id] for n in made], "kind": first.kind.value,
            "title": first.title, "body": first.body, "link": first.link,
            "created_at": first.created_at.isoformat(), "mailed": mailed}


def delivered(event: DomainEvent) -> list[Notification]:
    """The notifications a `notifications.created` event announces."""
    data = event.data
    if not data["items"]:
        return []
    at = datetime.fromisoformat(str(data["created_at"]))
    return [Notification(id=str(n_id), user_id=str(user_id), seq=int(seq),
                         kind=NotificationKind(data["kind"]), title=str(data["title"]),
                         body=str(data["body"]), link=data.get("link"), created_at=at)
            for user_id, seq, n_id in data["items"]]


@dataclass(frozen=True)
class Audience:
    """Who an announcement goes to: everyone, one cabinet's users, or a product's
    licensees."""

    cabinet_id: str | None = None
    product_id: str | None = None


class NotificationService:
    def __init__(self, storage: Storage, clock: Clock, ids: IdGenerator,
                 events: EventPublisher, notifier: Notifier) -> None:
        self._storage = storage
        self._clock = clock
        self._ids = ids
        self._events = events
        self._notifier = notifier

    async def list_own(self, actor: Principal, page: PageRequest,
                       unread_only: bool = False) -> tuple[Page[Notification], int]:
        user_id = _user(actor)
        async with self._storage.unit_of_work() as uow:
            rows = await uow.notifications.list_for_user(user_id, page, unread_only)
            unread = await uow.notifications.unread_count(user_id)
        return Page.from_rows(rows, page), unread

    async def after(self, actor: Principal, seq: int, limit: int) -> list[Notification]:
        async with self._storage.unit_of_work() as uow:
            return await uow.notifications.after(_user(actor), seq, limit)

    async def last_seq(self, actor: Principal) -> int:
        async with self._storage.unit_of_work() as uow:
            return await uow.notifications.last_seq(_user(actor))

    async def unread_count(self, actor: Principal) -> int:
        async with self._storage.unit_of_work() as uow:
            return await uow.notifications.unread_count(_user(actor))

    async def mark(self, actor: Principal, notification_id: str, read: bool) -> Notification:
        async with self._storage.unit_of_work() as uow:
            found = await uow.notifications.set_read(
                _user(actor), notification_id, self._clock.now() if read else None)
            if found is None:
                raise NotFound("No such notification.")
            await uow.commit()
        return found

    async def read_all(self, actor: Principal) -> int:
        async with self._storage.unit_of_work() as uow:
            count = await uow.notifications.read_all(_user(actor), self._clock.now())
            await uow.commit()
        return count

    async def delete(self, actor: Principal, notification_id: str) -> None:
        async with self._storage.unit_of_work() as uow:
            if not await uow.notifications.delete(_user(actor), notification_id):
                raise NotFound("No such notification.")
            await uow.commit()

    async def preferences(self, actor: Principal) -> dict[NotificationKind, Preference]:
        async with self._storage.unit_of_work() as uow:
            return preferences(await uow.notifications.preferences(_user(actor)))

    async def set_preferences(self, actor: Principal, chosen: dict[NotificationKind, Preference]
                              ) -> dict[NotificationKind, Preference]:
        async with self._storage.unit_of_work() as uow:
            await uow.notifications.set_preferences(_user(actor), chosen)
            stored = await uow.notifications.preferences(_user(actor))
            await uow.commit()
        return preferences(stored)

    async def recent_mail(self, actor: Principal, recipient: str = "",
                          limit: int = 100) -> list[OutboxMessage]:
        """Staff: the latest e-mail in the outbox (to `recipient`, a part of an address or
        name), sent, waiting or given up, with why."""
        if not actor.role.is_staff:
            raise Forbidden("Only the vendor's staff see the e-mail the portal sends.")
        async with self._storage.unit_of_work() as uow:
            return await uow.outbox.list_recent(limit, recipient.strip()[:200])

    async def announce(self, actor: Principal, title: str, body: str, link: str | None,
                       audience: Audience) -> int:
        """Staff tell everyone, one cabinet's users, or a product's licensees; how many
        were told."""
        if not actor.role.is_staff:
            raise Forbidden("Only the vendor's staff send announcements.")
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
        async with self._storage.unit_of_work() as uow:
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
            made = await self._notifier.send(uow, users, Message(
                NotificationKind.ANNOUNCEMENT, title, body, link))
            await uow.commit()
        await publish_all(self._events, uow)
        return len(made)


def _user(actor: Principal) -> str:
    if not actor.user_id:
        raise Forbidden("Notifications belong to users.")
    return actor.user_id
