"""Support requests as customers and staff work them in the portal: open, list, read and
change them (the conversation and files are app.services.conversation). Everything is
committed here first; what an external helpdesk must get is queued in the same
transaction (app.services.helpdesk_sync delivers it)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime

from app.domain import access
from app.domain.cabinets import Cabinet
from app.domain.errors import Conflict, Invalid, NotFound
from app.domain.events import IssueOpened, IssueUpdated
from app.domain.licensing import Certificate, DocumentFilter, DocumentStatus, License
from app.domain.paging import MAX_LIMIT, Page, PageRequest
from app.domain.products import Product
from app.domain.support import (
    MAX_DESCRIPTION,
    Attachment,
    Comment,
    Delivery,
    DeliveryKind,
    IssueChanges,
    IssueFilter,
    IssueStatus,
    Priority,
    SlaPolicy,
    SupportDelivery,
    SupportIssue,
    check_subject,
    check_text,
    due,
    number_for,
    transitions_for_customers,
)
from app.domain.users import Principal
from app.services.work import Transactions, UseCases
from ports.helpdesk import Helpdesk
from ports.objects import ObjectStore
from ports.storage import UnitOfWork
from ports.system import Clock, IdGenerator

EVERYTHING = access.Scope.everything()


@dataclass(frozen=True)
class SupportPolicy:
    sla: SlaPolicy
    bucket: str
    max_attachment_bytes: int
    attachment_types: frozenset[str]


@dataclass(frozen=True)
class RequestDraft:
    subject: str
    description: str
    product_id: str
    priority: Priority = Priority.NORMAL
    license_id: str | None = None
    certificate_id: str | None = None


@dataclass(frozen=True)
class IssueRow:
    """A request as lists show it."""

    issue: SupportIssue
    product_name: str
    cabinet_name: str
    now: datetime

    @property
    def id(self) -> str:
        return self.issue.id

    @property
    def breached(self) -> bool:
        return self.issue.breached(self.now)


@dataclass(frozen=True)
class IssueView:
    """A request as its page shows it: with its conversation (internal notes for staff
    only) and files, and whether the helpdesk has everything yet."""

    issue: SupportIssue
    cabinet: Cabinet
    product: Product
    certificate_number: str
    assignee_name: str | None
    comments: list[Comment]
    attachments: list[Attachment]
    undelivered: int
    now: datetime

    @property
    def breached(self) -> bool:
        return self.issue.breached(self.now)


class SupportUseCases(UseCases):
    """What the request and conversation use cases share: the helpdesk, the store of
    files, the policy, and how changes are queued for the helpdesk."""

    def __init__(self, work: Transactions, clock: Clock, ids: IdGenerator,
                 objects: ObjectStore, helpdesk: Helpdesk, policy: SupportPolicy) -> None:
        super().__init__(work, clock, ids)
        self._objects = objects
        self._helpdesk = helpdesk
        self._policy = policy

    @property
    def policy(self) -> SupportPolicy:
        return self._policy

    async def _queue(self, uow: UnitOfWork, issue_id: str, kind: DeliveryKind,
                     object_id: str, now: datetime) -> None:
        """What an external helpdesk must get, in the same transaction as the change."""
        if self._helpdesk.external:
            await uow.support_deliveries.queue(SupportDelivery(
                id=self._ids.new_id(), issue_id=issue_id, kind=kind, object_id=object_id,
                created_at=now, next_attempt_at=now))

    @staticmethod
    def _set_status(issue: SupportIssue, status: IssueStatus, now: datetime) -> None:
        issue.status = status
        if status.done:
            issue.resolved_at = issue.resolved_at or now
        else:
            issue.resolved_at = None  # reopened: the resolution target counts again


class SupportService(SupportUseCases):
    # ---- requests

    async def open(self, actor: Principal, draft: RequestDraft) -> SupportIssue:
        """A new request of the actor's organisation. It needs a support certificate for
        the product valid today (422 otherwise), whose level sets the response targets."""
        access.require_may_open_request(actor)
        subject = check_subject(draft.subject)
        description = check_text(draft.description, "description", MAX_DESCRIPTION)
        now = self._clock.now()
        async with self._work() as uow:
            cabinet = access.require_visible(actor, await uow.cabinets.get(
                actor.cabinet_id or "", EVERYTHING))
            product = await uow.products.get(draft.product_id)
            if product is None or not product.active:
                raise NotFound("No such product.", field="product_id")
            license_ = await self._license(uow, actor, product, draft.license_id)
            certificate = await self._certificate(uow, actor, product, draft.certificate_id,
                                                  license_, now)
            first_due, resolution_due = due(now, self._policy.sla.targets(certificate.level))
            author = await uow.users.get(actor.user_id or "", EVERYTHING)
            issue = SupportIssue(
                id=self._ids.new_id(), number=await self._number(uow, now.year),
                cabinet_id=cabinet.id, author_id=actor.user_id,
                author_name=author.name if author else actor.email, product_id=product.id,
                certificate_id=certificate.id, level=certificate.level,
                license_id=license_.id if license_ else None, subject=subject,
                description=description, status=IssueStatus.NEW, priority=draft.priority,
                assignee_id=None, created_at=now, updated_at=now, first_response_due=first_due,
                resolution_due=resolution_due)
            if not self._helpdesk.external:
                issue = replace(issue, external_id=issue.id, delivery=Delivery.DELIVERED)
            await uow.support.add(issue)
            await self._queue(uow, issue.id, DeliveryKind.TICKET, issue.id, now)
            await uow.audit.add(self._audit.entry(
                "issue.opened", actor, "issue", issue.id, cabinet.id, number=issue.number,
                product=product.code, priority=issue.priority.value))
            uow.events.record(IssueOpened(issue_id=issue.id, number=issue.number,
                                          subject=subject, cabinet_name=cabinet.name))
            await uow.commit()
        return issue

    async def list_visible(self, actor: Principal, filters: IssueFilter, page: PageRequest,
                           cabinet_id: str | None = None, *,
                           include_children: bool = True) -> Page[IssueRow]:
        """Newest first; `cabinet_id` narrows to one organisation in reach and those below
        (without `include_children`: that organisation alone)."""
        now = self._clock.now()
        async with self._work(read_only=True) as uow:
            scope = access.support_scope(actor)
            cabinet = None
            if cabinet_id is not None:
                cabinet = access.require_visible(actor, await uow.cabinets.get(
                    cabinet_id, access.visible_scope(actor)))
                if not scope.contains(cabinet.path):
                    raise NotFound("No such organisation.", field="cabinet_id")
            scope = access.narrowed(actor, scope, cabinet, include_children)
            rows = await uow.support.list_visible(scope, filters, page)
        return Page.from_rows([IssueRow(r.issue, r.product_name, r.cabinet_name, now)
                               for r in rows], page)

    async def get(self, actor: Principal, issue_id: str) -> IssueView:
        async with self._work(read_only=True) as uow:
            issue = await visible_issue(uow, actor, issue_id)
            return await self._view(uow, actor, issue)

    async def update(self, actor: Principal, issue_id: str,
                     changes: IssueChanges) -> IssueView:
        """The author and the organisation's admins change the subject and description,
        close and reopen; staff change the status, the priority and the assignee."""
        now = self._clock.now()
        async with self._work() as uow:
            issue = await visible_issue(uow, actor, issue_id, lock=True)
            cabinet = await uow.cabinets.get(issue.cabinet_id, EVERYTHING)
            assert cabinet is not None
            staff = access.may_work_requests(actor)
            changed: list[str] = []
            if changes.subject is not None or changes.description is not None:
                if not staff:
                    access.require_may_edit_request(actor, issue.author_id, cabinet)
                if changes.subject is not None:
                    issue.subject = check_subject(changes.subject)
                if changes.description is not None:
                    issue.description = check_text(changes.description, "description",
                                                   MAX_DESCRIPTION)
                changed.append("details")
            if changes.status is not None and changes.status is not issue.status:
                if not staff:
                    access.require_may_edit_request(actor, issue.author_id, cabinet)
                    if not transitions_for_customers(issue.status, changes.status):
                        raise Invalid("You may close a request, or reopen it.", field="status")
                self._set_status(issue, changes.status, now)
                changed.append(f"status {changes.status.label}")
            if changes.priority is not None and changes.priority is not issue.priority:
                access.require_may_work_requests(actor, "priority")
                issue.priority = changes.priority
                changed.append(f"priority {changes.priority.label}")
            if changes.assignee_id is not None or changes.unassign:
                access.require_may_work_requests(actor, "assignee_id")
                issue.assignee_id = None if changes.unassign else \
                    await self._assignee(uow, changes.assignee_id or "")
                changed.append("assignee")
            if changed:
                issue.updated_at = now
                await uow.support.update(issue)
                await self._queue(uow, issue.id, DeliveryKind.UPDATE, issue.id, now)
                await uow.audit.add(self._audit.entry(
                    "issue.updated", actor, "issue", issue.id, issue.cabinet_id,
                    number=issue.number, changed=changed))
                told = [c for c in changed if c.startswith(("status", "priority"))]
                if told:
                    uow.events.record(IssueUpdated(
                        issue_id=issue.id, number=issue.number, subject=issue.subject,
                        cabinet_id=issue.cabinet_id, change=sentence(told),
                        by_staff=staff, assignee_id=issue.assignee_id))
                await uow.commit()
            return await self._view(uow, actor, issue)

    # ---- staff

    async def failures(self, actor: Principal, limit: int = 100) -> list[SupportDelivery]:
        """What could not be delivered to the helpdesk, with why."""
        access.require_may_work_requests(actor)
        async with self._work(read_only=True) as uow:
            return await uow.support_deliveries.failed(limit)

    # ---- parts

    async def _view(self, uow: UnitOfWork, actor: Principal, issue: SupportIssue) -> IssueView:
        cabinet = await uow.cabinets.get(issue.cabinet_id, EVERYTHING)
        product = await uow.products.get(issue.product_id)
        certificate = await uow.certificates.get(issue.certificate_id, EVERYTHING)
        assert cabinet is not None and product is not None
        assignee = await uow.users.get(issue.assignee_id, EVERYTHING) \
            if issue.assignee_id else None
        return IssueView(
            issue, cabinet, product, certificate.number if certificate else "",
            assignee.name if assignee else None,
            await uow.support.comments(issue.id, internal=access.may_work_requests(actor)),
            await uow.support.attachments(issue.id),
            await uow.support_deliveries.pending_for(issue.id), self._clock.now())

    async def _license(self, uow: UnitOfWork, actor: Principal, product: Product,
                       license_id: str | None) -> License | None:
        if license_id is None:
            return None
        found = await uow.licenses.get(license_id, access.visible_scope(actor))
        if found is None or found.product_id != product.id:
            raise NotFound("No such license of this product.", field="license_id")
        return found

    async def _certificate(self, uow: UnitOfWork, actor: Principal, product: Product,
                           certificate_id: str | None, license_: License | None,
                           now: datetime) -> Certificate:
        """The certificate that opens the gate: the one named, else the one that covers
        the license, else the one of the product that lasts longest."""
        today = now.date()
        refused = Invalid(f"Opening a request needs a support certificate for {product.name} "
                          "that is valid today. Renew it, or contact us.",
                          field="certificate_id")
        if certificate_id is not None:
            found = await uow.certificates.get(certificate_id, access.visible_scope(actor))
            if found is None or found.product_id != product.id:
                raise NotFound("No such certificate of this product.", field="certificate_id")
            if found.status(today) is not DocumentStatus.ACTIVE:
                raise refused
            return found
        valid = list(await uow.certificates.list_visible(
            access.visible_scope(actor), DocumentFilter(today=today, product_id=product.id,
                                                        status=DocumentStatus.ACTIVE),
            PageRequest(MAX_LIMIT)))
        if not valid:
            raise refused
        valid.sort(key=lambda c: (license_ is not None and c.license_id == license_.id,
                                  c.valid_to or today), reverse=True)
        return valid[0]

    async def _assignee(self, uow: UnitOfWork, user_id: str) -> str:
        user = await uow.users.get(user_id, EVERYTHING)
        if user is None or not user.role.is_staff or not user.active:
            raise Invalid("Requests are assigned to the vendor's staff.", field="assignee_id")
        return user.id

    async def _number(self, uow: UnitOfWork, year: int) -> str:
        # Random, as document numbers: they must not tell how many requests there are.
        for _ in range(50):
            number = number_for(year, secrets.randbelow(1_000_000))
            if not await uow.support.number_taken(number):
                return number
        raise Conflict("No free request number was found; try again.")


async def visible_issue(uow: UnitOfWork, actor: Principal, issue_id: str, *,
                        lock: bool = False) -> SupportIssue:
    """A request in the actor's reach (NotFound outside it); `lock` until the unit of work
    ends."""
    found = await uow.support.get(issue_id, access.support_scope(actor), for_update=lock)
    if found is None:
        raise NotFound("No such support request.")
    return found


def sentence(parts: list[str]) -> str:
    """"status Resolved", "priority Low" -> "Status Resolved, priority Low"."""
    text = ", ".join(parts)
    return text[:1].upper() + text[1:]
