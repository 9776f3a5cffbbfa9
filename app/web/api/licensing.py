"""The brief's licenses and certificates: one set of handlers, registered for each kind."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel

from app.domain.licensing import DocumentKind
from app.domain.reports import ReportKind
from app.services.licensing import DocumentQuery, DocumentView
from app.services.reports import ReportQuery
from app.web.api.common import json_out, page_request, principal, services
from app.web.openapi import ApiRoutes
from app.web.reports import REPORT_MEDIA, report_response, wanted_report
from app.web.schemas.licensing import (
    CertificateDetail,
    CertificateFormatQuery,
    CertificateOut,
    CertificatePage,
    DocumentListQuery,
    LicenseDetail,
    LicenseFormatQuery,
    LicenseOut,
    LicensePage,
    TransferIn,
)

api = ApiRoutes("licenses and certificates")


@dataclass(frozen=True)
class Shapes:
    """What differs between the two kinds of document on the wire."""

    kind: DocumentKind
    plural: str
    item: type[LicenseOut] | type[CertificateOut]
    detail: type[LicenseDetail] | type[CertificateDetail]
    page: type[LicensePage] | type[CertificatePage]
    formats: type[LicenseFormatQuery] | type[CertificateFormatQuery]
    media: tuple[str, ...]

    def page_of(self, items: list[DocumentView], cursor: str | None) -> BaseModel:
        return self.page(items=[self.item.of(view) for view in items],  # type: ignore[misc]
                         next_cursor=cursor)


def wanted_format(request: web.Request, given: str | None) -> str:
    """`format` decides; without it, an Accept header that prefers PDF to JSON does."""
    if given:
        return given
    accept = request.headers.get("Accept", "")
    return "pdf" if "application/pdf" in accept and "application/json" not in accept else "json"


def _etag_of(header: str | None) -> str | None:
    return header.strip().removeprefix("W/").strip('"') if header else None


async def pdf_response(request: web.Request, kind: DocumentKind) -> web.Response:
    rendered = await services(request).documents.pdf(
        principal(request), kind, request.match_info["id"],
        known_etag=_etag_of(request.headers.get("If-None-Match")))
    headers = {"ETag": f'"{rendered.etag}"', "Cache-Control": "private, no-cache"}
    if rendered.content is None:
        return web.Response(status=304, headers=headers)
    await services(request).downloads.record_document(
        principal(request), rendered.view, "PDF", rendered.filename, len(rendered.content))
    return web.Response(body=rendered.content, content_type="application/pdf", headers={
        **headers, "Content-Disposition": f'attachment; filename="{rendered.filename}"'})


async def license_file_response(request: web.Request) -> web.Response:
    found = await services(request).documents.license_file(
        principal(request), request.match_info["id"])
    await services(request).downloads.record_document(
        principal(request), found.view, "license file", found.filename, len(found.token))
    return web.Response(text=found.token, content_type="application/jose", headers={
        "Content-Disposition": f'attachment; filename="{found.filename}"'})


def _register(shapes: Shapes) -> None:
    kind, plural = shapes.kind, shapes.plural
    base = f"/api/v1/{plural}"

    async def list_documents(request: web.Request,
                             query: DocumentListQuery) -> web.StreamResponse:
        wanted = DocumentQuery(
            product=query.product, cabinet_id=query.cabinet_id, status=query.status,
            expires_before=query.expires_before, include_children=query.include_children)
        fmt = wanted_report(request, query.format)
        if fmt is not None:
            return await report_response(request, ReportQuery(
                kind=ReportKind(plural), cabinet_id=query.cabinet_id,
                include_children=query.include_children, documents=wanted), fmt)
        page = await services(request).licensing.list_visible(
            principal(request), kind, wanted, page_request(query))
        response = json_out(shapes.page_of(list(page.items), page.next_cursor))
        response.headers["Vary"] = "Accept"
        return response

    async def get_document(request: web.Request,
                           query: LicenseFormatQuery | CertificateFormatQuery) -> web.Response:
        wanted = wanted_format(request, query.format)
        if wanted == "pdf":
            response = await pdf_response(request, kind)
        elif wanted == "lic":
            response = await license_file_response(request)
        else:
            view = await services(request).licensing.get(principal(request), kind,
                                                         request.match_info["id"])
            response = json_out(shapes.detail.of(view))
        response.headers["Vary"] = "Accept"  # one URL, JSON or PDF by the Accept header
        return response

    async def transfer_document(request: web.Request, body: TransferIn) -> web.Response:
        view = await services(request).licensing.transfer(
            principal(request), kind, request.match_info["id"], body.cabinet_id)
        return json_out(shapes.detail.of(view))

    list_documents.__name__ = f"list_{plural}"
    get_document.__name__ = f"get_{kind.value}"
    transfer_document.__name__ = f"transfer_{kind.value}"
    label = kind.label.lower()
    api.operation(
        "GET", base, summary=f"The {plural} of the caller's organisation, or their report",
        query=DocumentListQuery, response=shapes.page, media=REPORT_MEDIA, errors=(422,),
        description="What the caller's cabinet and the cabinets below it hold (staff: all); "
                    "`cabinet_id` narrows to one visible cabinet and those below it, "
                    "`include_children=false` to the one cabinet. With `format` csv, xlsx or "
                    "pdf: the report of every row these filters select, as an attachment.",
    )(list_documents)
    api.operation(
        "GET", f"{base}/{{id}}", summary=f"One {label}", query=shapes.formats,
        response=shapes.detail, media=shapes.media,
        extra_responses={304: ("The PDF is unchanged (If-None-Match).", None)},
        description=f"The {label} as JSON, or as a printable PDF (`format=pdf` or "
                    "`Accept: application/pdf`) with an ETag for conditional requests.",
    )(get_document)
    api.operation(
        "POST", f"{base}/{{id}}/transfer", summary=f"Hand a {label} down to a child cabinet",
        body=TransferIn, response=shapes.detail, errors=(403,),
        description="A customer admin moves it from its owner to a cabinet below the owner, "
                    "inside their own subtree; staff admins to any customer cabinet.",
    )(transfer_document)


_register(Shapes(DocumentKind.LICENSE, "licenses", LicenseOut, LicenseDetail, LicensePage,
                 LicenseFormatQuery, ("application/pdf", "application/jose")))
_register(Shapes(DocumentKind.CERTIFICATE, "certificates", CertificateOut, CertificateDetail,
                 CertificatePage, CertificateFormatQuery, ("application/pdf",)))
