"""The portal's own helpdesk: vendor staff work requests in the portal's staff pages, so
the portal's record is the ticket. Nothing is delivered and nothing comes back; asked, it
answers from that record as any helpdesk would."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping

from app.domain.access import Scope
from app.domain.support import ExternalComment, TicketState
from ports.helpdesk import (
    CommentDraft,
    FileDraft,
    HelpdeskRefused,
    InboundRefused,
    TicketDraft,
)
from ports.storage import Storage


class BuiltinHelpdesk:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    @property
    def name(self) -> str:
        return "builtin"

    async def probe(self) -> str:
        return "the portal's own (requests are worked in its pages)"

    @property
    def external(self) -> bool:
        return False

    async def create_ticket(self, draft: TicketDraft) -> str:
        return draft.portal_id  # the request is its own ticket

    async def update_ticket(self, external_id: str, draft: TicketDraft) -> None:
        return None  # changed where it is kept

    async def add_comment(self, external_id: str, comment: CommentDraft) -> str:
        return comment.portal_id

    async def add_file(self, external_id: str, file: FileDraft,
                       chunks: AsyncIterable[bytes]) -> str:
        async for _ in chunks:
            pass  # the portal's object store holds it already
        return file.portal_id

    async def ticket(self, external_id: str) -> TicketState:
        async with self._storage.unit_of_work() as uow:
            issue = await uow.support.get(external_id, Scope.everything())
            if issue is None:
                raise HelpdeskRefused(f"no request {external_id}")
            comments = await uow.support.comments(issue.id, internal=True)
        return TicketState(
            external_id=issue.id, status=issue.status, raw_status=issue.status.value,
            priority=issue.priority, comments=[
                ExternalComment(external_id=c.id, author_name=c.author_name, body=c.body,
                                public=c.public, at=c.created_at, portal_id=c.id)
                for c in comments])

    async def changed(self, cursor: str | None) -> tuple[list[str], str | None]:
        return [], cursor  # nothing changes anywhere else

    def file(self, file_id: str) -> AsyncIterator[bytes]:
        return _refused(f"the portal's own files are in its object store ({file_id})")

    def inbound(self, secret: str | None, headers: Mapping[str, str],
                body: bytes) -> list[str]:
        raise InboundRefused("the portal's own helpdesk sends no webhooks")


async def _refused(why: str) -> AsyncIterator[bytes]:
    """An iterator of no bytes that refuses on the first read, as the port says."""
    if why:
        raise HelpdeskRefused(why)
    yield b""
