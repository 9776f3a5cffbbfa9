"""Domain events: what happened, recorded on the unit of work that made it happen.

One frozen dataclass per event. The notifier decides for each whom it tells (an exhaustive
`match`: an event without a decision fails mypy); the unit of work publishes them once it
has committed, never when it rolls back; only the event bus adapters turn them into bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TypeAlias

from app.domain.licensing import DocumentKind
from app.domain.notifications import Batch
from app.domain.releases import ReleaseKind


@dataclass(frozen=True, kw_only=True)
class DocumentIssued:
    """A license or support certificate was issued (the purchases feed)."""

    kind: DocumentKind
    document_id: str
    number: str
    product_name: str
    valid_to: date | None
    # The organisations concerned: their users are told.
    cabinet_ids: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class DocumentRenewed:
    kind: DocumentKind
    document_id: str
    number: str
    valid_to: date | None
    cabinet_ids: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class DocumentRevoked:
    """Refunded: the document is no longer valid."""

    kind: DocumentKind
    document_id: str
    number: str
    cabinet_ids: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class DocumentTransferred:
    kind: DocumentKind
    document_id: str
    number: str
    from_cabinet_id: str
    from_name: str
    to_cabinet_id: str
    to_name: str


@dataclass(frozen=True, kw_only=True)
class ReleasePublished:
    """A version of a product was registered; a security fix is one of kind `security`."""

    product_id: str
    product_name: str
    release_id: str
    version: str
    kind: ReleaseKind
    title: str
    published_on: date


@dataclass(frozen=True, kw_only=True)
class UserInvited:
    user_id: str
    cabinet_id: str
    cabinet_name: str
    inviter_name: str


@dataclass(frozen=True, kw_only=True)
class IssueOpened:
    """A customer opened a support request."""

    issue_id: str
    number: str
    subject: str
    cabinet_name: str
    assignee_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class IssueUpdated:
    """A request's status or priority changed; `by_staff`: the vendor changed it (in the
    portal or the helpdesk), else its customer."""

    issue_id: str
    number: str
    subject: str
    cabinet_id: str
    change: str
    by_staff: bool
    assignee_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class IssueCommented:
    """Somebody wrote on a request: an agent's public reply, a customer's comment, or an
    internal note (which no customer hears of)."""

    issue_id: str
    number: str
    subject: str
    cabinet_id: str
    author_name: str
    by_staff: bool
    public: bool
    assignee_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class NotificationsCreated:
    """A message was stored for these users at this position: what live streams deliver.
    The batch carries who see it (`users`), not whom it was addressed to; `held` when its
    rows are still to be written from the batch."""

    batch: Batch
    held: bool


@dataclass(frozen=True, kw_only=True)
class MailQueued:
    """Messages were put into the outbox: it wakes the worker that sends them."""

    count: int


DomainEvent: TypeAlias = (DocumentIssued | DocumentRenewed | DocumentRevoked
                          | DocumentTransferred | ReleasePublished | UserInvited
                          | IssueOpened | IssueUpdated | IssueCommented
                          | NotificationsCreated | MailQueued)
