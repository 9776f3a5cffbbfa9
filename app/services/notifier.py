"""The notifier: who hears of what happened, in the portal and by e-mail.

It runs as the unit of work's step before commit (`prepare`): the change and what it
tells people (or the batch that is written from later) commit together, so nothing is
lost and nothing is told of a change that rolled back. Who hears of each event is
`decide`, an exhaustive match over the events.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import assert_never

from app.domain.events import (
    DocumentIssued,
    DocumentRenewed,
    DocumentRevoked,
    DocumentTransferred,
    DomainEvent,
    IssueCommented,
    IssueOpened,
    IssueUpdated,
    MailQueued,
    NotificationsCreated,
    ReleasePublished,
    UserInvited,
)
from app.domain.licensing import DocumentKind
from app.domain.notifications import Batch, Message, NotificationKind
from app.domain.releases import ReleaseKind
from app.services.mail import EmailComposer
from ports.storage import UnitOfWork
from ports.system import Clock, IdGenerator

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
        for entry in _gathered(events):
            told = await (self.decide(uow, entry) if not isinstance(entry, list)
                          else self._several(uow, entry))
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
            case IssueOpened():
                return Told(await _staff_of(uow, event.assignee_id), Message(
                    NotificationKind.ISSUE_OPENED, f"{event.number}: {event.subject}",
                    f"{event.cabinet_name} opened a support request.",
                    _issue_link(event.issue_id)))
            case IssueUpdated():
                if not event.by_staff:
                    return None  # the customer did it: the staff see it on the request
                return Told(await uow.notifications.recipients_in([event.cabinet_id]),
                            Message(NotificationKind.ISSUE_UPDATED,
                                    f"{event.number}: {event.change}",
                                    f"Your support request “{event.subject}”: {event.change}.",
                                    _issue_link(event.issue_id)))
            case IssueCommented():
                if not event.public:
                    return None  # an internal note reaches no customer, and tells nobody
                if event.by_staff:
                    users = await uow.notifications.recipients_in([event.cabinet_id])
                    body = f"{event.author_name} answered your support request."
                else:
                    users = await _staff_of(uow, event.assignee_id)
                    body = f"{event.author_name} wrote on the request."
                return Told(users, Message(NotificationKind.ISSUE_COMMENTED,
                                           f"{event.number}: {event.subject}", body,
                                           _issue_link(event.issue_id)))
            case NotificationsCreated() | MailQueued():
                return None  # what telling people makes: nothing more to tell
            case _:
                assert_never(event)


    @staticmethod
    async def _several(uow: UnitOfWork, changes: list[DocumentChange]) -> Told:
        """One message for documents issued, renewed or revoked together: a purchase of a
        license and its support certificate, or of a hundred licenses, is one message to
        each person, not one per document."""
        first = changes[0]
        counted = []
        for document_kind in DocumentKind:
            of_kind = [change for change in changes if change.kind is document_kind]
            what = _what(document_kind).lower()
            if len(of_kind) == 1:
                counted.append(f"{what} {of_kind[0].number}")
            elif of_kind:
                counted.append(f"{len(of_kind)} {what}s")
        more = [f"{len(changes) - NAMED} more"] if len(changes) > NAMED else []
        named = _and([change.number for change in changes[:NAMED]] + more)
        link = ("/licenses" if any(c.kind is DocumentKind.LICENSE for c in changes)
                else "/certificates")
        match first:
            case DocumentIssued():
                products = _and(list(dict.fromkeys(
                    c.product_name for c in changes if isinstance(c, DocumentIssued))))
                kind, done, body = (NotificationKind.LICENSE_ISSUED, "issued",
                                    f"{named} were issued for {products}.")
            case DocumentRenewed():
                ends = {c.valid_to for c in changes if isinstance(c, DocumentRenewed)}
                until = (f"until {next(iter(ends))}" if len(ends) == 1 and None not in ends
                         else "with their new end dates")
                kind, done, body = (NotificationKind.LICENSE_RENEWED, "renewed",
                                    f"{named} are valid {until} now.")
            case DocumentRevoked():
                kind, done, body = (NotificationKind.LICENSE_REVOKED, "revoked",
                                    f"{named} were revoked and are no longer valid.")
        title = f"{_and(counted)} {done}"
        return Told(await uow.notifications.recipients_in(list(first.cabinet_ids)),
                    Message(kind, title[0].upper() + title[1:], body, link))


DocumentChange = DocumentIssued | DocumentRenewed | DocumentRevoked
# Numbers a message about many documents names before "and N more".
NAMED = 5


def _gathered(events: list[DomainEvent]) -> list[DomainEvent | list[DocumentChange]]:
    """The events, with the documents issued (renewed, revoked) together for the same
    organisations gathered into one list where there are several."""
    gathered: list[DomainEvent | list[DocumentChange]] = []
    groups: dict[tuple[type, tuple[str, ...]], list[DocumentChange]] = {}
    for event in events:
        if not isinstance(event, DocumentIssued | DocumentRenewed | DocumentRevoked):
            gathered.append(event)
            continue
        key = (type(event), event.cabinet_ids)
        if key not in groups:
            groups[key] = []
            gathered.append(groups[key])
        groups[key].append(event)
    return [entry[0] if isinstance(entry, list) and len(entry) == 1 else entry
            for entry in gathered]


def _and(names: list[str]) -> str:
    return " and ".join(filter(None, (", ".join(names[:-1]), names[-1])))


async def _staff_of(uow: UnitOfWork, assignee_id: str | None) -> list[str]:
    return [assignee_id] if assignee_id else await uow.notifications.recipients_staff()


def _issue_link(issue_id: str) -> str:
    return f"/support/{issue_id}"


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
