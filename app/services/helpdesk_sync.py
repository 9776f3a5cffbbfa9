"""Keeping the portal and an external helpdesk in step.

Out: what customers write is queued with the change that makes it and delivered by a
worker, one item at a time, retried with backoff; the helpdesk adapter finds what a lost
answer already made, so nothing arrives twice. In: a webhook or the periodic
reconciliation names changed tickets; each is read whole and compared with the portal's
record, so a replay or a lost webhook changes nothing or only delays.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from app.domain import access
from app.domain.errors import TooLarge, UnsupportedType
from app.domain.events import IssueCommented, IssueUpdated
from app.domain.outbox import retry_delay
from app.domain.support import (
    Attachment,
    Comment,
    Delivery,
    DeliveryKind,
    ExternalFile,
    IssueStatus,
    SupportDelivery,
    SupportIssue,
    TicketState,
    media_type,
    safe_filename,
)
from app.services.background import QueueFigures, repeat
from app.services.conversation import Counted
from app.services.signatures import FeedDisabled, check_signature
from app.services.support import SupportPolicy, SupportUseCases, sentence
from app.services.work import Transactions
from ports.helpdesk import (
    CommentDraft,
    FileDraft,
    Helpdesk,
    HelpdeskError,
    HelpdeskRefused,
    HelpdeskUnavailable,
    TicketDraft,
)
from ports.objects import ObjectStore, ObjectStoreError
from ports.storage import UnitOfWork
from ports.system import Clock, IdGenerator

log = logging.getLogger(__name__)
EVERYTHING = access.Scope.everything()
# A delivery whose request has no ticket yet waits this long before it looks again.
TICKET_WAIT = timedelta(seconds=2)
LEASE = timedelta(minutes=5)
BATCH = 20


@dataclass(frozen=True)
class SyncPolicy:
    max_attempts: int
    # The signed feed of changes (POST /api/v1/feed/support); empty: refused.
    feed_secret: str = ""
    feed_tolerance_seconds: int = 300
    base_delay: float = 5.0
    max_delay: float = 3600.0


class HelpdeskSync(SupportUseCases):
    def __init__(self, work: Transactions, clock: Clock, ids: IdGenerator,
                 objects: ObjectStore, helpdesk: Helpdesk, policy: SupportPolicy,
                 sync: SyncPolicy) -> None:
        super().__init__(work, clock, ids, objects, helpdesk, policy)
        self._sync = sync
        self._figures = QueueFigures("delivered", "failed", "retried")

    def stats(self) -> dict[str, float]:
        return self._figures.stats()

    async def measure(self) -> None:
        """How many deliveries wait, and how long the oldest has waited."""
        async with self._work(read_only=True) as uow:
            waiting, oldest = await uow.support_deliveries.backlog()
        self._figures.measured(waiting, oldest, self._clock.now())

    @property
    def external(self) -> bool:
        """Whether there is anything to deliver and to reconcile."""
        return self._helpdesk.external

    async def probe(self) -> str:
        """Whether the helpdesk answers (for `portal check`)."""
        return await self._helpdesk.probe()

    # ---- out

    async def deliver_due(self) -> int:
        """Deliver what is due now; how many were tried."""
        if not self._helpdesk.external:
            return 0
        now = self._clock.now()
        async with self._work() as uow:
            claimed = await uow.support_deliveries.claim(now, now + LEASE, BATCH)
            await uow.commit()
        for delivery in claimed:
            await self._deliver(delivery)
        return len(claimed)

    async def _deliver(self, delivery: SupportDelivery) -> None:
        async with self._work() as uow:
            issue = await uow.support.get(delivery.issue_id, EVERYTHING)
            assert issue is not None, "a delivery outlives no request"
            if delivery.kind is not DeliveryKind.TICKET and issue.external_id is None:
                # Its ticket is not made yet: look again soon, without counting a failure.
                await uow.support_deliveries.retry_later(
                    delivery.id, delivery.attempts, self._clock.now() + TICKET_WAIT,
                    "waiting for the request's ticket")
                await uow.commit()
                return
            draft = await self._draft(uow, issue)
        try:
            await self._hand_over(delivery, issue, draft)
        except HelpdeskUnavailable as exc:
            await self._failed(delivery, str(exc), final=False)
        except HelpdeskRefused as exc:
            await self._failed(delivery, str(exc), final=True)

    async def _hand_over(self, delivery: SupportDelivery, issue: SupportIssue,
                         draft: TicketDraft) -> None:
        kind, ticket = delivery.kind, issue.external_id or ""
        if kind is DeliveryKind.TICKET:
            external_id = await self._helpdesk.create_ticket(draft)
            async with self._work() as uow:
                found = await uow.support.get(issue.id, EVERYTHING, for_update=True)
                assert found is not None
                found.external_id, found.delivery, found.delivery_error = \
                    external_id, Delivery.DELIVERED, None
                await uow.support.update(found)
                await uow.support_deliveries.done(delivery.id)
                await uow.commit()
            self._figures.count("delivered")
            return
        if kind is DeliveryKind.UPDATE:
            await self._helpdesk.update_ticket(ticket, draft)
            await self._done(delivery)
            return
        if kind is DeliveryKind.COMMENT:
            async with self._work(read_only=True) as uow:
                comment = await uow.support.get_comment(issue.id, delivery.object_id)
            if comment is not None:  # deleted since: nothing to deliver
                external_id = await self._helpdesk.add_comment(ticket, CommentDraft(
                    comment.id, comment.author_name, comment.body, comment.public))
                await self._done(delivery, comment=(comment, external_id))
            else:
                await self._done(delivery, handed=False)
            return
        async with self._work(read_only=True) as uow:
            attachment = await uow.support.get_attachment(issue.id, delivery.object_id)
        if attachment is None:
            await self._done(delivery, handed=False)
            return
        try:
            external_id = await self._helpdesk.add_file(ticket, FileDraft(
                attachment.id, await self._uploader(attachment), attachment.filename,
                attachment.content_type, attachment.size),
                self._objects.get(attachment.bucket, attachment.key))
        except ObjectStoreError as exc:
            raise HelpdeskUnavailable(f"the file is not readable here: {exc}") from exc
        await self._done(delivery, attachment=(attachment, external_id))

    async def _done(self, delivery: SupportDelivery, *,
                    comment: tuple[Comment, str] | None = None,
                    attachment: tuple[Attachment, str] | None = None,
                    handed: bool = True) -> None:
        """The delivery is done: `handed` to the helpdesk, or not (what it carried was
        deleted meanwhile)."""
        async with self._work() as uow:
            if comment is not None:
                found = await uow.support.get_comment(delivery.issue_id, comment[0].id)
                if found is not None:
                    found.external_id, found.delivery = comment[1], Delivery.DELIVERED
                    await uow.support.update_comment(found)
            if attachment is not None:
                stored = await uow.support.get_attachment(delivery.issue_id, attachment[0].id)
                if stored is not None:
                    stored.external_id, stored.delivery = attachment[1], Delivery.DELIVERED
                    await uow.support.update_attachment(stored)
            await uow.support_deliveries.done(delivery.id)
            await uow.commit()
        if handed:
            self._figures.count("delivered")

    async def _failed(self, delivery: SupportDelivery, error: str, *, final: bool) -> None:
        attempts = delivery.attempts + 1
        give_up = final or attempts >= self._sync.max_attempts
        async with self._work() as uow:
            if give_up:
                log.error("support request %s: %s not delivered to %s, given up: %s",
                          delivery.issue_id, delivery.kind.value, self._helpdesk.name, error)
                await uow.support_deliveries.give_up(delivery.id, attempts, error)
                issue = await uow.support.get(delivery.issue_id, EVERYTHING, for_update=True)
                if issue is not None and delivery.kind is DeliveryKind.TICKET:
                    issue.delivery, issue.delivery_error = Delivery.FAILED, error[:1000]
                    await uow.support.update(issue)
            else:
                later = self._clock.now() + retry_delay(
                    attempts, base=self._sync.base_delay, cap=self._sync.max_delay)
                log.warning("support request %s: %s not delivered (attempt %d), again at %s:"
                            " %s", delivery.issue_id, delivery.kind.value, attempts,
                            later.isoformat(timespec="seconds"), error)
                await uow.support_deliveries.retry_later(delivery.id, attempts, later, error)
            await uow.commit()
        self._figures.count("failed" if give_up else "retried")

    async def _draft(self, uow: UnitOfWork, issue: SupportIssue) -> TicketDraft:
        cabinet = await uow.cabinets.get(issue.cabinet_id, EVERYTHING)
        product = await uow.products.get(issue.product_id)
        author = await uow.users.get(issue.author_id, EVERYTHING) if issue.author_id else None
        return TicketDraft(
            portal_id=issue.id, number=issue.number, subject=issue.subject,
            description=issue.description, status=issue.status, priority=issue.priority,
            submitter_email=author.email if author else "",
            organisation=cabinet.name if cabinet else "", product=product.name if product
            else "", level=issue.level, created_at=issue.created_at)

    async def _uploader(self, attachment: Attachment) -> str:
        async with self._work(read_only=True) as uow:
            user = await uow.users.get(attachment.uploader_id, EVERYTHING) \
                if attachment.uploader_id else None
        return user.name if user else "the customer"

    # ---- in

    def check_feed(self, header: str | None, body: bytes) -> None:
        """The signed feed's signature (as the purchases feed's); FeedDisabled without a
        secret."""
        if not self._sync.feed_secret:
            raise FeedDisabled("The support feed is not configured on this portal.")
        check_signature(self._sync.feed_secret, header, body, self._clock.now(),
                        self._sync.feed_tolerance_seconds)

    async def inbound(self, secret: str | None, headers: Mapping[str, str],
                      body: bytes) -> int:
        """A webhook call: the tickets it names are read and applied; how many changes."""
        return await self.refresh(self._helpdesk.inbound(secret, headers, body))

    async def reconcile(self) -> int:
        """Ask the helpdesk what changed since the last time, and apply it."""
        if not self._helpdesk.external:
            return 0
        async with self._work(read_only=True) as uow:
            cursor = await uow.support_deliveries.cursor(self._helpdesk.name)
        changed, after = await self._helpdesk.changed(cursor)
        applied = await self.refresh(changed)
        if after is not None and after != cursor:
            async with self._work() as uow:
                await uow.support_deliveries.set_cursor(self._helpdesk.name, after)
                await uow.commit()
        return applied

    async def refresh(self, external_ids: list[str]) -> int:
        applied = 0
        for external_id in dict.fromkeys(external_ids):
            async with self._work(read_only=True) as uow:
                known = await uow.support.get_by_external_id(external_id)
            if known is None:
                continue  # not a ticket of the portal's
            try:
                state = await self._helpdesk.ticket(external_id)
            except HelpdeskRefused as exc:  # gone there, or not shown to the service account
                log.warning("support request %s: ticket %s not readable in %s: %s",
                            known.number, external_id, self._helpdesk.name, exc)
                continue
            applied += await self._apply(state)
        return applied

    async def _apply(self, state: TicketState) -> int:
        """Make the portal's record say what the ticket says; how many changes. Applying
        the same state twice changes nothing the second time."""
        files: list[tuple[str, ExternalFile]] = []
        now, applied = self._clock.now(), 0
        async with self._work() as uow:
            issue = await uow.support.get_by_external_id(state.external_id)
            if issue is None:
                return 0
            issue = await uow.support.get(issue.id, EVERYTHING, for_update=True)
            assert issue is not None
            for external in state.comments:
                if external.portal_id is not None:
                    continue  # one the portal wrote and delivered
                known = await uow.support.comment_by_external_id(issue.id, external.external_id)
                if known is not None:
                    if known.public:  # a file whose copy failed last time is tried again
                        files += [(known.id, f) for f in external.attachments]
                    continue
                comment = Comment(
                    id=self._ids.new_id(), issue_id=issue.id, author_id=None,
                    author_name=external.author_name, by_staff=True, body=external.body,
                    public=external.public, created_at=external.at, updated_at=external.at,
                    external_id=external.external_id, delivery=Delivery.DELIVERED)
                await uow.support.add_comment(comment)
                applied += 1
                if external.public:
                    issue.first_response_at = issue.first_response_at or external.at
                    if issue.status is IssueStatus.NEW and state.means(IssueStatus.OPEN):
                        issue.status = IssueStatus.OPEN  # answered: no longer new
                    files += [(comment.id, f) for f in external.attachments]
                uow.events.record(IssueCommented(
                    issue_id=issue.id, number=issue.number, subject=issue.subject,
                    cabinet_id=issue.cabinet_id, author_name=external.author_name,
                    by_staff=True, public=external.public, assignee_id=issue.assignee_id))
            # A change made here and not delivered yet wins over the helpdesk's old state.
            told = []
            if not await uow.support_deliveries.pending_for(issue.id):
                if not state.means(issue.status):
                    self._set_status(issue, state.status, now)
                    told.append(f"status {state.status.label}")
                if state.priority is not None and state.priority is not issue.priority:
                    issue.priority = state.priority
                    told.append(f"priority {state.priority.label}")
            issue.external_status = state.raw_status
            if applied or told:
                issue.updated_at = now
            await uow.support.update(issue)
            if told:
                applied += len(told)
                uow.events.record(IssueUpdated(
                    issue_id=issue.id, number=issue.number, subject=issue.subject,
                    cabinet_id=issue.cabinet_id, change=sentence(told),
                    by_staff=True, assignee_id=issue.assignee_id))
            await uow.commit()
        for comment_id, file in files:
            try:
                await self._fetch(issue, comment_id, file)
            except (HelpdeskError, ObjectStoreError, TooLarge) as exc:
                # The words reached the customer; the file is tried again next time.
                log.warning("support request %s: agent file %s not copied: %s",
                            issue.number, file.external_id, exc)
        return applied

    async def _fetch(self, issue: SupportIssue, comment_id: str, file: ExternalFile) -> None:
        """An agent's file, copied into the portal's store: the helpdesk's own links have
        no access control, so customers get the bytes from the portal."""
        async with self._work(read_only=True) as uow:
            if await uow.support.attachment_by_external_id(issue.id, file.external_id):
                return
        name = safe_filename(file.filename)
        try:
            content_type = media_type(name, self._policy.attachment_types)
        except UnsupportedType:  # the agent's words around it still reach the customer
            log.warning("support request %s: agent file %r of a type not accepted; left out",
                        issue.number, name)
            return
        attachment_id = self._ids.new_id()
        key = f"issues/{issue.id}/{attachment_id}"
        counted = Counted(self._helpdesk.file(file.external_id),
                          self._policy.max_attachment_bytes)
        await self._objects.put(self._policy.bucket, key, counted)
        async with self._work() as uow:
            await uow.support.add_attachment(Attachment(
                id=attachment_id, issue_id=issue.id, comment_id=comment_id, uploader_id=None,
                by_staff=True, filename=name, content_type=content_type, size=counted.size,
                sha256=counted.sha256.hexdigest(), bucket=self._policy.bucket, key=key,
                created_at=self._clock.now(), external_id=file.external_id,
                delivery=Delivery.DELIVERED))
            await uow.commit()

    # ---- in the background

    async def deliver_forever(self, interval: float, wake: asyncio.Event) -> None:
        await repeat("helpdesk delivery", self._deliver_all, interval, wake)

    async def _deliver_all(self) -> None:
        while await self.deliver_due() == BATCH:
            pass

    async def reconcile_forever(self, interval: float) -> None:
        await repeat("helpdesk reconciliation", self.reconcile, interval)
