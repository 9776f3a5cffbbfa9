"""Bodies of the support requests API, its conversation and files, and the support feed."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from app.domain.support import (
    MAX_COMMENT,
    MAX_DESCRIPTION,
    MAX_SUBJECT,
    Attachment,
    Comment,
    Delivery,
    IssueStatus,
    Priority,
)
from app.services.support import IssueRow, IssueView
from app.web.reports import FORMAT_DESCRIPTION
from app.web.schemas.common import Body, ListQuery, Out, reject_null

Id = Field(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z-]+$")


class IssueQuery(ListQuery):
    status: IssueStatus | None = None
    product_id: str | None = Field(None, max_length=40)
    cabinet_id: str | None = Field(None, max_length=40,
                                   description="One organisation in reach and those below.")
    q: str | None = Field(None, max_length=200, description="Part of the subject, or the "
                                                            "request's number.")
    include_children: bool = Field(True, description="false: the organisation itself only "
                                                     "(`cabinet_id`, else the caller's).")
    format: Literal["json", "csv", "xlsx", "pdf"] | None = Field(
        None, description=FORMAT_DESCRIPTION)


class IssueCreate(Body):
    subject: str = Field(min_length=1, max_length=MAX_SUBJECT)
    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION)
    product_id: str = Id
    license_id: str | None = Field(None, min_length=1, max_length=40)
    certificate_id: str | None = Field(None, min_length=1, max_length=40,
                                       description="Else one valid today is chosen.")
    priority: Priority = Priority.NORMAL


class IssuePatch(Body):
    """Fields left out stay as they are; `assignee_id` null unassigns (staff)."""

    subject: str | SkipJsonSchema[None] = Field(None, min_length=1, max_length=MAX_SUBJECT)
    description: str | SkipJsonSchema[None] = Field(None, min_length=1,
                                                    max_length=MAX_DESCRIPTION)
    status: IssueStatus | SkipJsonSchema[None] = None
    priority: Priority | SkipJsonSchema[None] = None
    assignee_id: str | None = Field(None, min_length=1, max_length=40)

    _no_null = field_validator("subject", "description", "status", "priority",
                               mode="before")(reject_null)


class IssueOut(Out):
    id: str
    number: str
    subject: str
    status: IssueStatus
    priority: Priority
    product_id: str
    product_name: str
    cabinet_id: str
    cabinet_name: str
    author_name: str
    certificate_id: str
    license_id: str | None
    level: str
    created_at: datetime
    updated_at: datetime
    first_response_due: datetime
    first_response_at: datetime | None
    resolution_due: datetime
    resolved_at: datetime | None
    sla_breached: bool
    delivery: Delivery = Field(description="Whether the helpdesk has the request yet.")

    @classmethod
    def of(cls, row: IssueRow | IssueView) -> IssueOut:
        issue = row.issue
        product = row.product_name if isinstance(row, IssueRow) else row.product.name
        cabinet = row.cabinet_name if isinstance(row, IssueRow) else row.cabinet.name
        return cls(
            id=issue.id, number=issue.number, subject=issue.subject, status=issue.status,
            priority=issue.priority, product_id=issue.product_id, product_name=product,
            cabinet_id=issue.cabinet_id, cabinet_name=cabinet, author_name=issue.author_name,
            certificate_id=issue.certificate_id, license_id=issue.license_id,
            level=issue.level, created_at=issue.created_at, updated_at=issue.updated_at,
            first_response_due=issue.first_response_due,
            first_response_at=issue.first_response_at, resolution_due=issue.resolution_due,
            resolved_at=issue.resolved_at, sla_breached=row.breached, delivery=issue.delivery)


class IssuePage(Out):
    items: list[IssueOut]
    next_cursor: str | None


class CommentOut(Out):
    id: str
    author_name: str
    by_staff: bool
    body: str
    internal: bool = Field(description="An internal note; only staff ever see one.")
    created_at: datetime
    updated_at: datetime
    delivery: Delivery

    @classmethod
    def of(cls, comment: Comment) -> CommentOut:
        return cls(id=comment.id, author_name=comment.author_name, by_staff=comment.by_staff,
                   body=comment.body, internal=not comment.public,
                   created_at=comment.created_at, updated_at=comment.updated_at,
                   delivery=comment.delivery)


class AttachmentOut(Out):
    id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    by_staff: bool
    created_at: datetime
    download_url: str

    @classmethod
    def of(cls, attachment: Attachment) -> AttachmentOut:
        return cls(id=attachment.id, filename=attachment.filename,
                   content_type=attachment.content_type, size=attachment.size,
                   sha256=attachment.sha256, by_staff=attachment.by_staff,
                   created_at=attachment.created_at,
                   download_url=f"/api/v1/issues/{attachment.issue_id}/attachments/"
                                f"{attachment.id}")


class IssueDetail(IssueOut):
    description: str
    certificate_number: str
    assignee_name: str | None
    undelivered: int = Field(description="Items not yet in the helpdesk.")
    comments: list[CommentOut]
    attachments: list[AttachmentOut]

    @classmethod
    def detail(cls, view: IssueView) -> IssueDetail:
        return cls(**IssueOut.of(view).model_dump(), description=view.issue.description,
                   certificate_number=view.certificate_number,
                   assignee_name=view.assignee_name, undelivered=view.undelivered,
                   comments=[CommentOut.of(c) for c in view.comments],
                   attachments=[AttachmentOut.of(a) for a in view.attachments])


class CommentIn(Body):
    body: str = Field(min_length=1, max_length=MAX_COMMENT)
    internal: bool = Field(False, description="Staff: an internal note no customer sees.")


class CommentPatch(Body):
    body: str = Field(min_length=1, max_length=MAX_COMMENT)


class CommentPage(Out):
    items: list[CommentOut]
    next_cursor: str | None = None


class AttachmentPage(Out):
    items: list[AttachmentOut]
    next_cursor: str | None = None


class SupportFeedIn(Body):
    tickets: list[str] = Field(min_length=1, max_length=1000,
                               description="Ids of the helpdesk's tickets that changed.")


class SupportFeedOut(Out):
    applied: int = Field(description="Changes applied now (0 for a replay).")
