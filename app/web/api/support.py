"""Support requests: the brief's /api/v1/issues, their comments and files, and the feeds
through which an external helpdesk says what changed."""

from __future__ import annotations

from aiohttp import web

from app.domain.errors import Unauthenticated
from app.domain.reports import ReportKind
from app.domain.support import IssueChanges, IssueFilter
from app.services.reports import ReportQuery
from app.services.support import RequestDraft
from app.web.api.common import json_out, page_request, principal, services
from app.web.openapi import ApiRoutes
from app.web.reports import REPORT_MEDIA, report_response, wanted_report
from app.web.schemas.support import (
    AttachmentOut,
    AttachmentPage,
    CommentIn,
    CommentOut,
    CommentPage,
    CommentPatch,
    IssueCreate,
    IssueDetail,
    IssueOut,
    IssuePage,
    IssuePatch,
    IssueQuery,
    SupportFeedIn,
    SupportFeedOut,
)
from app.web.uploads import chunks, file_part
from ports.helpdesk import InboundRefused
from ports.objects import attachment_header

api = ApiRoutes("support requests")
SIGNATURE_HEADER = "X-Portal-Signature"
# Files are sent as they are: never run, framed or sniffed by the browser.
FILE_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store",
                "Content-Security-Policy": "default-src 'none'; sandbox"}


@api.operation("GET", "/api/v1/issues", summary="Support requests, or their report",
               query=IssueQuery, response=IssuePage, media=REPORT_MEDIA, errors=(422,),
               description="Newest first. A customer user sees their organisation's, a customer "
                           "admin also those of the organisations below, staff all. With "
                           "`format` csv, xlsx or pdf: the report of every row these filters "
                           "select, as an attachment.")
async def list_issues(request: web.Request, query: IssueQuery) -> web.StreamResponse:
    filters = IssueFilter(status=query.status, product_id=query.product_id, text=query.q)
    fmt = wanted_report(request, query.format)
    if fmt is not None:
        return await report_response(request, ReportQuery(
            kind=ReportKind.ISSUES, cabinet_id=query.cabinet_id,
            include_children=query.include_children, issues=filters), fmt)
    page = await services(request).support.list_visible(
        principal(request), filters, page_request(query), query.cabinet_id,
        include_children=query.include_children)
    response = json_out(IssuePage(items=[IssueOut.of(row) for row in page.items],
                                  next_cursor=page.next_cursor))
    response.headers["Vary"] = "Accept"
    return response


@api.operation("POST", "/api/v1/issues", summary="Open a support request", body=IssueCreate,
               response=IssueDetail, status=201, errors=(403,),
               description="Needs a support certificate for the product that is valid today "
                           "(422 otherwise); its level sets the response targets.")
async def open_issue(request: web.Request, body: IssueCreate) -> web.Response:
    actor = principal(request)
    support = services(request).support
    issue = await support.open(actor, RequestDraft(
        subject=body.subject, description=body.description, product_id=body.product_id,
        priority=body.priority, license_id=body.license_id,
        certificate_id=body.certificate_id))
    return json_out(IssueDetail.detail(await support.get(actor, issue.id)), status=201)


@api.operation("GET", "/api/v1/issues/{id}", summary="One support request",
               response=IssueDetail,
               description="With its conversation (internal notes for staff only) and files.")
async def get_issue(request: web.Request) -> web.Response:
    view = await services(request).support.get(principal(request), request.match_info["id"])
    return json_out(IssueDetail.detail(view))


@api.operation("PATCH", "/api/v1/issues/{id}", summary="Change a support request",
               body=IssuePatch, response=IssueDetail, errors=(403,),
               description="The author and the organisation's admins change the subject and "
                           "description, close (`closed`) and reopen (`open`); staff change "
                           "the status, the priority and the assignee (null: nobody).")
async def update_issue(request: web.Request, body: IssuePatch) -> web.Response:
    assignee = "assignee_id" in body.model_fields_set
    view = await services(request).support.update(
        principal(request), request.match_info["id"], IssueChanges(
            subject=body.subject, description=body.description, status=body.status,
            priority=body.priority, assignee_id=body.assignee_id if assignee else None,
            unassign=assignee and body.assignee_id is None))
    return json_out(IssueDetail.detail(view))


@api.operation("GET", "/api/v1/issues/{id}/comments", summary="A request's conversation",
               response=CommentPage, description="Oldest first; internal notes for staff only.")
async def list_comments(request: web.Request) -> web.Response:
    found = await services(request).conversation.comments(principal(request),
                                                          request.match_info["id"])
    return json_out(CommentPage(items=[CommentOut.of(c) for c in found]))


@api.operation("POST", "/api/v1/issues/{id}/comments", summary="Write on a request",
               body=CommentIn, response=CommentOut, status=201, errors=(403, 409),
               description="A closed request takes no comment from its customer (409): "
                           "reopen it first.")
async def add_comment(request: web.Request, body: CommentIn) -> web.Response:
    comment = await services(request).conversation.comment(
        principal(request), request.match_info["id"], body.body, public=not body.internal)
    return json_out(CommentOut.of(comment), status=201)


@api.operation("PATCH", "/api/v1/issues/{id}/comments/{comment_id}",
               summary="Change one's comment", body=CommentPatch, response=CommentOut,
               errors=(403,), description="One's own; staff any.")
async def edit_comment(request: web.Request, body: CommentPatch) -> web.Response:
    comment = await services(request).conversation.edit_comment(
        principal(request), request.match_info["id"], request.match_info["comment_id"],
        body.body)
    return json_out(CommentOut.of(comment))


@api.operation("DELETE", "/api/v1/issues/{id}/comments/{comment_id}",
               summary="Delete one's comment", status=204, errors=(403,))
async def delete_comment(request: web.Request) -> web.Response:
    await services(request).conversation.delete_comment(
        principal(request), request.match_info["id"], request.match_info["comment_id"])
    return web.Response(status=204)


@api.operation("GET", "/api/v1/issues/{id}/attachments", summary="A request's files",
               response=AttachmentPage)
async def list_attachments(request: web.Request) -> web.Response:
    found = await services(request).conversation.attachments(principal(request),
                                                             request.match_info["id"])
    return json_out(AttachmentPage(items=[AttachmentOut.of(a) for a in found]))


@api.operation("POST", "/api/v1/issues/{id}/attachments", summary="Attach a file",
               upload="file", response=AttachmentOut, status=201, errors=(413,),
               description="multipart/form-data with the file in the field `file`, read as it "
                           "arrives: over support.max_attachment_bytes it is 413 and nothing "
                           "is kept; a type support.attachment_types does not list is 415.")
async def add_attachment(request: web.Request) -> web.Response:
    # A declared length over the limit (and the form's framing) is 413 already: see
    # app.web.middlewares.body_limits.
    part = await file_part(request)
    attachment = await services(request).conversation.attach(
        principal(request), request.match_info["id"], part.filename or "",
        chunks(request, part))
    return json_out(AttachmentOut.of(attachment), status=201)


@api.operation("GET", "/api/v1/issues/{id}/attachments/{attachment_id}",
               summary="Download a file", media=("application/octet-stream",),
               extra_responses={200: ("The file, as an attachment.", None)})
async def download_attachment(request: web.Request) -> web.StreamResponse:
    attachment, data = await services(request).conversation.attachment(
        principal(request), request.match_info["id"], request.match_info["attachment_id"])
    response = web.StreamResponse(headers={
        **FILE_HEADERS, "Content-Disposition": attachment_header(attachment.filename)})
    response.content_type = attachment.content_type
    response.content_length = attachment.size
    await response.prepare(request)
    try:
        async for chunk in data:
            await response.write(chunk)
    finally:
        await data.aclose()  # type: ignore[attr-defined]
    await response.write_eof()
    return response


@api.operation("DELETE", "/api/v1/issues/{id}/attachments/{attachment_id}",
               summary="Delete a file", status=204, errors=(403,),
               description="Its uploader's; staff any.")
async def delete_attachment(request: web.Request) -> web.Response:
    await services(request).conversation.delete_attachment(
        principal(request), request.match_info["id"], request.match_info["attachment_id"])
    return web.Response(status=204)


def _signed(request: web.Request, raw: bytes) -> None:
    services(request).helpdesk.check_feed(request.headers.get(SIGNATURE_HEADER), raw)


@api.operation("POST", "/api/v1/feed/support", summary="Tickets the helpdesk changed",
               auth=False, scheme="feedSignature", verify_raw=_signed, body=SupportFeedIn,
               response=SupportFeedOut,
               description="Signed like the purchases feed, with support.feed_secret. Each "
                           "ticket named is read from the helpdesk and applied once: a replay "
                           "changes nothing.")
async def support_feed(request: web.Request, body: SupportFeedIn) -> web.Response:
    applied = await services(request).helpdesk.refresh(body.tickets)
    return json_out(SupportFeedOut(applied=applied))


@api.operation("POST", "/api/v1/feed/helpdesk/{secret}", summary="The helpdesk's webhook",
               auth=False, response=SupportFeedOut, errors=(401,),
               description="For helpdesks whose webhooks are not signed (django-helpdesk): "
                           "the URL's secret is support.django_helpdesk.webhook_secret.")
async def helpdesk_webhook(request: web.Request) -> web.Response:
    raw = await request.read()
    try:
        applied = await services(request).helpdesk.inbound(
            request.match_info["secret"], request.headers, raw)
    except InboundRefused:
        raise Unauthenticated("This is not the helpdesk's webhook address.") from None
    return json_out(SupportFeedOut(applied=applied))
