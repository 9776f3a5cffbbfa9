"""Support requests: the portal's own record of each request, its conversation and files,
and the queue that delivers them to the helpdesk."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from app.domain.access import Scope
from app.domain.paging import PageRequest
from app.domain.support import (
    Attachment,
    Comment,
    IssueFilter,
    IssueListing,
    SupportDelivery,
    SupportIssue,
)


class SupportRepository(Protocol):
    """Requests are read under a Scope of their organisation, like everything a tenant
    holds; their comments and files through the request they belong to."""

    async def add(self, issue: SupportIssue) -> None:
        """Insert; DuplicateKey("support_issues.number") when the number is taken."""

    async def get(self, issue_id: str, scope: Scope, *,
                  for_update: bool = False) -> SupportIssue | None:
        """One of an organisation in scope; `for_update` locks it until the unit of work
        ends."""

    async def get_by_external_id(self, external_id: str) -> SupportIssue | None:
        """The request a helpdesk ticket stands for, whoever's it is: for what comes back
        from the helpdesk."""

    async def number_taken(self, number: str) -> bool: ...

    async def list_visible(self, scope: Scope, filters: IssueFilter,
                           page: PageRequest) -> list[IssueListing]:
        """Of organisations in scope and passing the filters, newest first, up to
        page.limit + 1, before the id `page.after`; with their product's and
        organisation's names (one query: lists are the everyday page)."""

    async def open_in_helpdesk(self, after: str | None, limit: int) -> list[SupportIssue]:
        """Requests the helpdesk holds (delivered) and that are not closed, in id order
        after `after`: what reconciliation looks at."""

    async def update(self, issue: SupportIssue) -> None:
        """Write every field that changes after creation."""

    async def add_comment(self, comment: Comment) -> None: ...

    async def get_comment(self, issue_id: str, comment_id: str) -> Comment | None:
        """A comment of that request, not deleted."""

    async def comment_by_external_id(self, issue_id: str,
                                     external_id: str) -> Comment | None:
        """Deleted ones too: a change applied once is never applied again."""

    async def comments(self, issue_id: str, *, internal: bool) -> list[Comment]:
        """Oldest first, not deleted; internal notes only with `internal`."""

    async def update_comment(self, comment: Comment) -> None:
        """Write body, updated_at, deleted_at, external_id and delivery."""

    async def add_attachment(self, attachment: Attachment) -> None: ...

    async def get_attachment(self, issue_id: str, attachment_id: str) -> Attachment | None:
        """A file of that request, not deleted."""

    async def attachment_by_external_id(self, issue_id: str,
                                        external_id: str) -> Attachment | None: ...

    async def attachments(self, issue_id: str) -> list[Attachment]:
        """Oldest first, not deleted."""

    async def update_attachment(self, attachment: Attachment) -> None:
        """Write deleted_at, external_id and delivery."""


class SupportDeliveryRepository(Protocol):
    """What is to reach the helpdesk, queued in the transaction that made it: like the
    outbox, nothing is lost when the helpdesk is down, and nothing is delivered twice by
    two processes."""

    async def queue(self, delivery: SupportDelivery) -> None: ...

    async def claim(self, now: datetime, lease_until: datetime,
                    limit: int) -> list[SupportDelivery]:
        """Pending deliveries due by `now` and not leased, oldest first, leased to the
        caller until `lease_until`; concurrent claimers never get the same one."""

    async def done(self, delivery_id: str) -> None: ...

    async def retry_later(self, delivery_id: str, attempts: int, at: datetime,
                          error: str | None) -> None:
        """Try again at `at`; `attempts` counts the failures (a delivery that only waited
        for its request's ticket keeps its count)."""

    async def give_up(self, delivery_id: str, attempts: int, error: str) -> None: ...

    async def failed(self, limit: int) -> list[SupportDelivery]:
        """Those given up on, newest first: for staff to see why."""

    async def pending_for(self, issue_id: str) -> int:
        """How many of a request's deliveries still wait."""

    async def backlog(self) -> tuple[int, datetime | None]:
        """How many deliveries wait (pending), and when the oldest of them was queued (None:
        none waits). Retries move an item's due time on; its age goes on growing."""

    async def cursor(self, name: str) -> str | None:
        """Where reconciliation got to with the helpdesk (None before the first)."""

    async def set_cursor(self, name: str, value: str) -> None: ...
