"""The reports page: one organisation's holdings and support at a glance, drawn on the
server (inline SVG, no JavaScript), and each report to download in each format."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

from aiohttp import web

from app.domain.paging import MAX_LIMIT, PageRequest
from app.domain.reports import Chart, ReportFormat, ReportKind, charts
from app.domain.users import Principal
from app.web.keys import SERVICES
from app.web.pages.common import signed_in
from app.web.pages.render import render

routes = web.RouteTableDef()


@routes.get("/reports")
@signed_in
async def reports_page(request: web.Request, me: Principal) -> web.StreamResponse:
    services = request.app[SERVICES]
    cabinet_id = request.query.get("cabinet") or None
    product_id = request.query.get("product") or None
    # An unticked box sends nothing: before the form was sent, those below count.
    include_children = request.query.get("children") == "on" if "sent" in request.query \
        else True
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
    return render(request, "reports.html", {
        "reports": reports, "by_kind": by_kind, "charts": drawn, "downloads": downloads,
        "formats": list(ReportFormat), "kinds": list(ReportKind),
        "cabinets": cabinets.items if cabinets.next_cursor is None else [],
        "products": products.items, "chosen": {"cabinet": cabinet_id or "",
                                               "product": product_id or "",
                                               "children": include_children},
        "organisation": licenses.organisation,
        "pdf_limit": services.reports.policy.pdf_row_limit})


def _titled(chart: Chart, title: str) -> Chart:
    return replace(chart, title=title)
