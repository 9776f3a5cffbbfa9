"""Helpdesk port: the service that works support requests, of which the portal is the face.

The portal keeps its own record of every request; an external helpdesk gets what customers
write through a delivery queue, and what its agents do comes back by webhook and by
reconciliation. Every write is idempotent by the portal's id: a retry after a lost answer
never makes a second ticket, comment or file. Statuses are mapped to the portal's words;
the helpdesk's own word is kept beside them.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from app.domain.support import IssueStatus, Priority, TicketState


class HelpdeskError(Exception):
    """Base of what a helpdesk adapter raises."""


class HelpdeskUnavailable(HelpdeskError):
    """Down, slow or overloaded: try again later; nothing is known to have changed."""


class HelpdeskRefused(HelpdeskError):
    """It will not take this, however often asked (bad credentials, a rule of its own)."""


class InboundRefused(HelpdeskError):
    """A webhook call that does not come from the helpdesk, or says nothing readable."""


@dataclass(frozen=True)
class TicketDraft:
    portal_id: str
    number: str
    subject: str
    description: str
    status: IssueStatus
    priority: Priority
    submitter_email: str
    organisation: str
    product: str
    level: str
    # When the portal committed it: a ticket made by an earlier try is younger.
    created_at: datetime


@dataclass(frozen=True)
class CommentDraft:
    portal_id: str
    author_name: str
    body: str
    public: bool


@dataclass(frozen=True)
class FileDraft:
    portal_id: str
    author_name: str
    filename: str
    content_type: str
    size: int


class Helpdesk(Protocol):
    @property
    def name(self) -> str:
        """Names this helpdesk's reconciliation cursor."""

    @property
    def external(self) -> bool:
        """False for the portal's own helpdesk: what is stored here is delivered already,
        and nothing comes back from elsewhere."""

    async def probe(self) -> str:
        """Whether the helpdesk answers now: what was found, or HelpdeskUnavailable (or
        HelpdeskRefused: its credentials). For operators (`portal check`)."""

    async def create_ticket(self, draft: TicketDraft) -> str:
        """The ticket's id. Asked again for the same `portal_id` (its answer was lost), it
        finds the ticket made the first time instead of making another.
        HelpdeskUnavailable / HelpdeskRefused."""

    async def update_ticket(self, external_id: str, draft: TicketDraft) -> None:
        """Make the ticket's subject, description, status and priority the draft's."""

    async def add_comment(self, external_id: str, comment: CommentDraft) -> str:
        """The comment's id there; idempotent by `portal_id` like create_ticket."""

    async def add_file(self, external_id: str, file: FileDraft,
                       chunks: AsyncIterable[bytes]) -> str:
        """Attach the file's bytes (read as they are sent); its id there; idempotent."""

    async def ticket(self, external_id: str) -> TicketState:
        """The ticket now: status, priority and its conversation, internal notes marked.
        HelpdeskRefused if it is gone."""

    async def changed(self, cursor: str | None) -> tuple[list[str], str | None]:
        """The tickets changed since `cursor` (None: from now on), and the cursor to ask
        with next time."""

    def file(self, file_id: str) -> AsyncIterator[bytes]:
        """The bytes of a file an agent attached, read as they are consumed."""

    def inbound(self, secret: str | None, headers: Mapping[str, str],
                body: bytes) -> list[str]:
        """The tickets a webhook call says have changed; InboundRefused if the call is not
        the helpdesk's (its URL's secret or its signature does not match)."""
