"""The reports page: one organisation's holdings and support at a glance, drawn on the
server (inline SVG, no JavaScript), and each report to download in each format."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from urllib.parse import urlencode

from aiohttp import web

from app.domain import access
from app.domain.errors import DomainError, Invalid
from app.domain.paging import MAX_LIMIT, PageRequest
from app.domain.reports import Chart, ReportFormat, ReportKind, charts
from app.domain.subscriptions import Cadence
from app.domain.users import Principal
from app.services.subscriptions import SubscriptionDraft
from app.web.keys import SERVICES
from app.web.pages.common import form_of, signed_in
from app.web.pages.render import render, see_other
from app.web.reports import report_response

routes = web.RouteTableDef()


@routes.get("/reports")
@signed_in
async def reports_page(request: web.Request, me: Principal) -> web.StreamResponse:
    return await _page(request, me, request.query)


async def _page(request: web.Request, me: Principal, given: Mapping[str, str], *,
                status: int = 200, error: str = "") -> web.Response:
    services = request.app[SERVICES]
    cabinet_id = given.get("cabinet") or None
    product_id = given.get("product") or None
    # An unticked box sends nothing: before the form was sent, those below count.
    include_children = given.get("children") == "on" if "sent" in given else True
    reports = await services.reports.overview(me, cabinet_id, include_children, product_id)
    by_kind = {report.query.kind: report for report in reports}
    cabinets = await services.cabinets.list_visible(me, PageRequest(MAX_LIMIT))
    products = await services.catalog.list_visible(me, PageRequest(MAX_LIMIT))
    params = {k: v for k, v in {"cabinet_id": cabinet_id, "product": product_id,
                                "include_children": "true" if include_children else "false"
                                }.items() if v}
    downloads = {kind: {fmt: f"/api/v1/{kind.value}?" + urlencode(
        {"format": fmt.value, **params}) for fmt in ReportFormat} for kind in ReportKind}
    licenses, certificates, issues = (by_kind[k] for k in ReportKind)
    drawn = [
        _titled(charts(licenses.summary)[0], "Licenses ending, next 12 months"),
        _titled(charts(certificates.summary)[0], "Support certificates ending, next 12 months"),
        _titled(charts(licenses.summary)[1], "Licenses by product"),
        _titled(charts(issues.summary)[0], "Support requests by status"),
        _titled(charts(issues.summary)[1], "SLA breaches by month opened"),
    ]
    scheduled = await services.subscriptions.of_user(me) \
        if access.may_subscribe_reports(me) else []
    names = {c.id: c.name for c in cabinets.items}
    return render(request, "reports.html", {
        "scheduled": scheduled, "names": names, "cadences": list(Cadence), "error": error,
        "notice": request.query.get("notice", ""),
        "reports": reports, "by_kind": by_kind, "charts": drawn, "downloads": downloads,
        "formats": list(ReportFormat), "kinds": list(ReportKind),
        "cabinets": cabinets.items if cabinets.next_cursor is None else [],
        "products": products.items, "chosen": {"cabinet": cabinet_id or "",
                                               "product": product_id or "",
                                               "children": include_children},
        "organisation": licenses.organisation,
        "pdf_limit": services.reports.policy.pdf_row_limit}, status=status)


def _titled(chart: Chart, title: str) -> Chart:
    return replace(chart, title=title)


@routes.post("/reports/scheduled")
@signed_in
async def subscribe(request: web.Request, me: Principal) -> web.StreamResponse:
    form = await form_of(request)
    kind, fmt, cadence = form.get("kind", ""), form.get("format", ""), form.get("cadence", "")
    try:
        if kind not in ReportKind._value2member_map_ or fmt not in \
                ReportFormat._value2member_map_ or cadence not in Cadence._value2member_map_:
            raise Invalid("Choose a report, a format and how often.")
        await request.app[SERVICES].subscriptions.subscribe(me, SubscriptionDraft(
            kind=ReportKind(kind), format=ReportFormat(fmt), cadence=Cadence(cadence),
            cabinet_id=form.get("cabinet") or None, product_id=form.get("product") or None,
            include_children=form.get("children") == "on"))
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        return await _page(request, me, form, status=exc.status, error=exc.detail)
    return see_other("/reports?notice=scheduled#scheduled")


@routes.post("/reports/scheduled/{id}/cancel")
@signed_in
async def unsubscribe(request: web.Request, me: Principal) -> web.StreamResponse:
    await request.app[SERVICES].subscriptions.cancel(me, request.match_info["id"])
    return see_other("/reports?notice=stopped#scheduled")


@routes.get("/reports/scheduled/{token}")
@signed_in
async def scheduled_report(request: web.Request, me: Principal) -> web.StreamResponse:
    """The link a scheduled report's e-mail carries: the report, made now."""
    query, fmt = await request.app[SERVICES].subscriptions.open_link(
        me, request.match_info["token"])
    return await report_response(request, query, fmt)
