"""The audit log page (staff: everything; customer administrators: their subtree) with its
filters and CSV export, and the filters the download history shares with it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from aiohttp import web

from app.domain.audit import AUDIT_COLUMNS, AuditEntry, AuditFilter, audit_row, described
from app.domain.errors import DomainError
from app.domain.reports import Row
from app.domain.users import Principal
from app.web.keys import SERVICES
from app.web.pages.common import signed_in
from app.web.pages.listing import Column, Listing, day_or_none, fetch_page, listing
from app.web.pages.render import render
from app.web.reports import stream_csv
from ports.objects import attachment_header

routes = web.RouteTableDef()
TIME_COLUMNS = [Column("at", "When")]
# Families of actions, for the "What" field's suggestions.
ACTIONS = ("cabinet", "customer", "user", "login", "login.failed", "logout", "license",
           "certificate", "purchase.applied", "product", "release", "download", "issue",
           "notification.announced", "report", "token.reuse_detected")
# Where an entry's object has a page.
PAGES = {"cabinet": "/cabinets/{}", "license": "/licenses/{}", "certificate": "/certificates/{}",
         "product": "/products/{}", "issue": "/support/{}"}


def object_link(entry: AuditEntry) -> str | None:
    page = PAGES.get(entry.object_type)
    return page.format(entry.object_id) if page and entry.object_id else None


def object_name(entry: AuditEntry) -> str | None:
    """What people call the object, where the entry says: its number, address or name."""
    for key in ("number", "email", "name", "code", "license"):
        if isinstance(entry.details.get(key), str) and entry.details[key]:
            return str(entry.details[key])
    return None


def _day(query: dict[str, str], key: str, notices: list[str]) -> date | None:
    found = day_or_none(query.get(key))
    if key in query and found is None:
        notices.append(f"“{query.pop(key)}” is not a date (YYYY-MM-DD); it is left out.")
    return found


def audit_filters(controls: Listing, notices: list[str]) -> AuditFilter:
    """What the URL narrows the entries to: `who` (part of an e-mail), `what` (an action or
    a family), `object` (an id), `product` (a code), `from` and `to` (days, both included)."""
    query = controls.query
    since, until = _day(query, "from", notices), _day(query, "to", notices)
    return AuditFilter(
        action=query.get("what", "").strip().lower() or None,
        object_id=query.get("object", "").strip() or None,
        actor=query.get("who", ""),
        since=datetime.combine(since, time(), UTC) if since else None,
        before=datetime.combine(until + timedelta(days=1), time(), UTC) if until else None,
        product=query.get("product") or None, cabinet_id=query.get("cabinet") or None)


@routes.get("/audit")
@signed_in
async def audit_page(request: web.Request, me: Principal) -> web.StreamResponse:
    notices: list[str] = []
    controls = listing(request, TIME_COLUMNS, "-at", notices)
    services = request.app[SERVICES]
    organisation = None
    if "cabinet" in controls.query:
        try:
            organisation = await services.cabinets.get(me, controls.query["cabinet"])
        except DomainError:
            notices.append("That organisation is not one you can see; showing all you can.")
            del controls.query["cabinet"]
    filters = audit_filters(controls, notices)
    page = await fetch_page(controls, notices, lambda page: services.audit_log.entries(
        me, filters, page))
    export = {k: v for k, v in controls.query.items() if k not in ("page", "sort")}
    return render(request, "audit.html", {
        "entries": page.items, "list": controls, "notices": notices, "actions": ACTIONS,
        "organisation": organisation,
        "filters": controls.query, "object_link": object_link, "object_name": object_name,
        "described": described,
        "filtered": any(k in controls.query for k in ("who", "what", "object", "from", "to",
                                                       "cabinet")),
        "export_url": f"/audit.csv?{urlencode(export)}" if export else "/audit.csv"})


@routes.get("/audit.csv")
@signed_in
async def audit_export(request: web.Request, me: Principal) -> web.StreamResponse:
    """Every entry the same filters select, oldest first, as CSV."""
    notices: list[str] = []
    controls = listing(request, TIME_COLUMNS, "-at", notices)
    filters = audit_filters(controls, notices)
    log = request.app[SERVICES].audit_log
    batches = log.batches(me, filters)
    # The first batch before the first byte: a refusal is still a page, not a broken file.
    first: list[AuditEntry] = await anext(batches, [])

    async def rows() -> AsyncIterator[list[Row]]:
        yield [audit_row(entry) for entry in first]
        async for batch in batches:
            yield [audit_row(entry) for entry in batch]

    today = datetime.now(UTC).date().isoformat()
    return await stream_csv(request, AUDIT_COLUMNS, rows(), {
        "Content-Disposition": attachment_header(f"audit-log-{today}.csv"),
        "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"})
