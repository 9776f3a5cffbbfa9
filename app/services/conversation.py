"""The conversation of a support request: comments (internal notes for staff), and files,
streamed into the object store and out of it."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator

from app.domain import access
from app.domain.errors import Conflict, NotFound, TooLarge
from app.domain.events import IssueCommented
from app.domain.support import (
    MAX_COMMENT,
    Attachment,
    Comment,
    Delivery,
    DeliveryKind,
    IssueStatus,
    SupportIssue,
    check_text,
    media_type,
    safe_filename,
)
from app.domain.users import Principal
from app.services.support import EVERYTHING, SupportUseCases, visible_issue
from ports.storage import UnitOfWork


class ConversationService(SupportUseCases):
    async def comment(self, actor: Principal, issue_id: str, body: str, *,
                      public: bool = True) -> Comment:
        """A reply on the request; `public=False` is a staff's internal note."""
        text = check_text(body, "body", MAX_COMMENT)
        staff = access.may_work_requests(actor)
        if not public:
            access.require_may_work_requests(actor, "public")
        now = self._clock.now()
        async with self._work() as uow:
            issue = await visible_issue(uow, actor, issue_id, lock=True)
            if issue.status is IssueStatus.CLOSED and not staff:
                raise Conflict("This request is closed; reopen it to write on it.")
            author = await uow.users.get(actor.user_id or "", EVERYTHING)
            comment = Comment(
                id=self._ids.new_id(), issue_id=issue.id, author_id=actor.user_id,
                author_name=author.name if author else actor.email, by_staff=staff, body=text,
                public=public, created_at=now, updated_at=now,
                delivery=Delivery.PENDING if self._helpdesk.external else Delivery.DELIVERED)
            await uow.support.add_comment(comment)
            if staff and public and issue.first_response_at is None:
                issue.first_response_at = now
            if not staff and issue.status is IssueStatus.WAITING:
                self._set_status(issue, IssueStatus.OPEN, now)
            issue.updated_at = now
            await uow.support.update(issue)
            await self._queue(uow, issue.id, DeliveryKind.COMMENT, comment.id, now)
            uow.events.record(IssueCommented(
                issue_id=issue.id, number=issue.number, subject=issue.subject,
                cabinet_id=issue.cabinet_id, author_name=comment.author_name, by_staff=staff,
                public=public, assignee_id=issue.assignee_id))
            await uow.commit()
        return comment

    async def comments(self, actor: Principal, issue_id: str) -> list[Comment]:
        async with self._work(read_only=True) as uow:
            issue = await visible_issue(uow, actor, issue_id)
            return await uow.support.comments(issue.id,
                                              internal=access.may_work_requests(actor))

    async def edit_comment(self, actor: Principal, issue_id: str, comment_id: str,
                           body: str) -> Comment:
        """One's own (staff: any). The helpdesk keeps what it was first sent."""
        text = check_text(body, "body", MAX_COMMENT)
        async with self._work() as uow:
            _, comment = await self._comment(uow, actor, issue_id, comment_id)
            access.require_may_change_comment(actor, comment.author_id)
            comment.body, comment.updated_at = text, self._clock.now()
            await uow.support.update_comment(comment)
            await uow.commit()
        return comment

    async def delete_comment(self, actor: Principal, issue_id: str, comment_id: str) -> None:
        async with self._work() as uow:
            issue, comment = await self._comment(uow, actor, issue_id, comment_id)
            access.require_may_change_comment(actor, comment.author_id)
            comment.deleted_at = self._clock.now()
            await uow.support.update_comment(comment)
            await uow.audit.add(self._audit.entry(
                "issue.comment_deleted", actor, "issue", issue.id, issue.cabinet_id,
                comment=comment.id))
            await uow.commit()

    # ---- files

    async def attach(self, actor: Principal, issue_id: str, filename: str,
                     chunks: AsyncIterable[bytes], declared_size: int | None = None
                     ) -> Attachment:
        """Store a file of the request, read as it arrives: over the size limit it is 413
        and nothing is kept; a type not accepted is 415. Its name is cleaned for showing;
        where its bytes lie is a key of the portal's own."""
        async with self._work(read_only=True) as uow:
            issue = await visible_issue(uow, actor, issue_id)
        name = safe_filename(filename)
        content_type = media_type(name, self._policy.attachment_types)
        limit = self._policy.max_attachment_bytes
        if declared_size is not None and declared_size > limit:
            raise TooLarge(_too_large(limit), field="file")
        attachment_id = self._ids.new_id()
        key = f"issues/{issue.id}/{attachment_id}"
        counted = Counted(chunks, limit)
        await self._objects.put(self._policy.bucket, key, counted)
        now = self._clock.now()
        attachment = Attachment(
            id=attachment_id, issue_id=issue.id, comment_id=None, uploader_id=actor.user_id,
            by_staff=access.may_work_requests(actor), filename=name,
            content_type=content_type, size=counted.size, sha256=counted.sha256.hexdigest(),
            bucket=self._policy.bucket, key=key, created_at=now,
            delivery=Delivery.PENDING if self._helpdesk.external else Delivery.DELIVERED)
        try:
            async with self._work() as uow:
                await visible_issue(uow, actor, issue_id, lock=True)
                await uow.support.add_attachment(attachment)
                await self._queue(uow, issue.id, DeliveryKind.ATTACHMENT, attachment.id, now)
                await uow.audit.add(self._audit.entry(
                    "issue.file_added", actor, "issue", issue.id, issue.cabinet_id,
                    file=name, size=counted.size))
                await uow.commit()
        except BaseException:
            await self._objects.delete(self._policy.bucket, key)
            raise
        return attachment

    async def attachments(self, actor: Principal, issue_id: str) -> list[Attachment]:
        async with self._work(read_only=True) as uow:
            issue = await visible_issue(uow, actor, issue_id)
            return await uow.support.attachments(issue.id)

    async def attachment(self, actor: Principal, issue_id: str,
                         attachment_id: str) -> tuple[Attachment, AsyncIterator[bytes]]:
        """A file and its bytes, read from the store as they are sent."""
        async with self._work(read_only=True) as uow:
            issue = await visible_issue(uow, actor, issue_id)
            found = await uow.support.get_attachment(issue.id, attachment_id)
        if found is None:
            raise NotFound("No such file of this request.")
        return found, self._objects.get(found.bucket, found.key)

    async def delete_attachment(self, actor: Principal, issue_id: str,
                                attachment_id: str) -> None:
        """Its uploader's (staff: any)."""
        async with self._work() as uow:
            issue = await visible_issue(uow, actor, issue_id)
            found = await uow.support.get_attachment(issue.id, attachment_id)
            if found is None:
                raise NotFound("No such file of this request.")
            access.require_may_change_comment(actor, found.uploader_id)
            found.deleted_at = self._clock.now()
            await uow.support.update_attachment(found)
            await uow.audit.add(self._audit.entry(
                "issue.file_deleted", actor, "issue", issue.id, issue.cabinet_id,
                file=found.filename))
            await uow.commit()
        await self._objects.delete(found.bucket, found.key)

    async def _comment(self, uow: UnitOfWork, actor: Principal, issue_id: str,
                       comment_id: str) -> tuple[SupportIssue, Comment]:
        issue = await visible_issue(uow, actor, issue_id)
        found = await uow.support.get_comment(issue.id, comment_id)
        if found is None or not (found.public or access.may_work_requests(actor)):
            raise NotFound("No such comment on this request.")
        return issue, found



def _too_large(limit: int) -> str:
    return f"A file may have at most {limit / 2**20:.0f} MiB."


class Counted:
    """The chunks of an upload, counted and hashed as they pass; over the limit it stops
    with TooLarge, and the store keeps nothing of it."""

    def __init__(self, chunks: AsyncIterable[bytes], limit: int) -> None:
        self._chunks = chunks
        self._limit = limit
        self.size = 0
        self.sha256 = hashlib.sha256()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            self.size += len(chunk)
            if self.size > self._limit:
                raise TooLarge(_too_large(self._limit), field="file")
            self.sha256.update(chunk)
            yield chunk
