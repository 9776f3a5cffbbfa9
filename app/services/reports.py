"""Reports on licenses, certificates and support requests: the rows of the very lists the
API answers in JSON (the same use cases, the same filters, page after page, nothing capped),
as CSV, XLSX or PDF, with their summary; and who took which report, in the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from app.domain import access
from app.domain.errors import Invalid
from app.domain.paging import PageRequest
from app.domain.reports import (
    COLUMNS,
    Column,
    ReportFormat,
    ReportKind,
    Row,
    Summary,
    charts,
    filename,
    safe_cells,
)
from app.domain.support import IssueFilter
from app.domain.users import Principal
from app.services.licensing import DocumentQuery, DocumentView, LicensingService
from app.services.support import IssueRow, SupportService
from app.services.work import Transactions, UseCases
from ports.documents import DocumentRenderer, RenderingTooSlow
from ports.spreadsheets import SpreadsheetWriter
from ports.system import Clock, IdGenerator

# Rows read at a time: one page of the list each.
BATCH = 500
EVERYTHING = access.Scope.everything()


@dataclass(frozen=True)
class ReportPolicy:
    brand: str
    # A PDF of more rows is refused (422, pointing to CSV and XLSX): WeasyPrint takes some
    # 17 s and 360 MB for 3,000 rows.
    pdf_row_limit: int
    pdf_time_limit: float


@dataclass(frozen=True)
class ReportQuery:
    """The list's filters: `documents` for licenses and certificates, `issues` for support
    requests; the organisation and whether those below it count, for all."""

    kind: ReportKind
    cabinet_id: str | None = None
    include_children: bool = True
    documents: DocumentQuery = field(default_factory=DocumentQuery)
    issues: IssueFilter = field(default_factory=IssueFilter)

    def shown(self) -> dict[str, str]:
        """The filters in use, as a report's reader reads them."""
        found: dict[str, str] = {}
        if self.kind is ReportKind.ISSUES:
            pairs: list[tuple[str, Any]] = [
                ("status", self.issues.status), ("product", self.issues.product_id),
                ("search", self.issues.text)]
        else:
            pairs = [("product", self.documents.product), ("status", self.documents.status),
                     ("ends before", self.documents.expires_before)]
        for name, value in pairs:
            if value:
                found[name] = str(value)
        found["organisations"] = "with those below it" if self.include_children else \
            "this one only"
        return found


@dataclass
class Report:
    """A report about to be written: what it covers, and its summary, filled as its rows
    are read."""

    query: ReportQuery
    format: ReportFormat
    title: str
    organisation: str
    cabinet_id: str | None
    generated_at: datetime
    columns: tuple[Column, ...]
    summary: Summary
    filename: str
    rows_written: int = 0
    # Whether the audit log has it.
    recorded: bool = False


class ReportService(UseCases):
    def __init__(self, work: Transactions, clock: Clock, ids: IdGenerator,
                 licensing: LicensingService, support: SupportService,
                 renderer: DocumentRenderer, spreadsheets: SpreadsheetWriter,
                 policy: ReportPolicy) -> None:
        super().__init__(work, clock, ids)
        self._licensing = licensing
        self._support = support
        self._renderer = renderer
        self._spreadsheets = spreadsheets
        self._policy = policy

    @property
    def policy(self) -> ReportPolicy:
        return self._policy

    async def prepare(self, actor: Principal, query: ReportQuery,
                      fmt: ReportFormat) -> Report:
        """Everything checked before the first byte: the organisation in reach (404
        otherwise), the filters (as the JSON list checks them)."""
        await self._page(actor, query, PageRequest(1))
        organisation = await self._organisation(actor, query.cabinet_id)
        now = self._clock.now()
        return Report(query=query, format=fmt, title=query.kind.label,
                      organisation=organisation, cabinet_id=query.cabinet_id or
                      actor.cabinet_id, generated_at=now, columns=COLUMNS[query.kind],
                      summary=Summary(query.kind, now.date()),
                      filename=filename(query.kind, organisation, now.date(), fmt))

    async def batches(self, actor: Principal, report: Report) -> AsyncIterator[list[Row]]:
        """Every row of the list, a page at a time, each cell safe for a spreadsheet; the
        summary counts them as they go."""
        after: str | None = None
        while True:
            rows, after = await self._page(actor, report.query, PageRequest(BATCH, after))
            batch = [safe_cells(row) for row in rows]
            for row in batch:
                report.summary.add(row)
            report.rows_written += len(batch)
            if batch:
                yield batch
            if after is None:
                return

    async def pdf(self, actor: Principal, report: Report) -> bytes:
        """The report as a printed document, with its summary and charts. More rows than
        the PDF limit: 422, nothing rendered."""
        rows: list[Row] = []
        async for batch in self.batches(actor, report):
            rows += batch
            if len(rows) > self._policy.pdf_row_limit:
                raise Invalid(f"A PDF report holds at most {self._policy.pdf_row_limit:,} rows "
                              f"and this one has more. Take it as CSV or XLSX (format=csv or "
                              "format=xlsx), or narrow the filters.", field="format")
        try:
            return await self._renderer.render_pdf(["pdf/report.html"], {
                "report": report, "rows": rows, "summary": report.summary,
                "charts": charts(report.summary), "brand": self._policy.brand},
                time_limit=self._policy.pdf_time_limit)
        except RenderingTooSlow:
            raise Invalid(f"This PDF took longer than {self._policy.pdf_time_limit:.0f} s to "
                          "make and was stopped. Take the report as CSV or XLSX, or narrow "
                          "the filters.", field="format") from None

    async def xlsx(self, actor: Principal, report: Report, path: Path) -> None:
        """The report as a workbook at `path`: the rows, and a summary sheet."""
        await self._spreadsheets.write(path, report.title, report.columns,
                                       self.batches(actor, report), report.summary)

    async def overview(self, actor: Principal, cabinet_id: str | None,
                       include_children: bool, product_id: str | None) -> list[Report]:
        """The dashboard: each report's summary (its rows read, none kept), for one
        organisation in reach (404 otherwise) or the caller's."""
        found = []
        for kind in ReportKind:
            report = await self.prepare(actor, ReportQuery(
                kind=kind, cabinet_id=cabinet_id, include_children=include_children,
                documents=DocumentQuery(product=product_id),
                issues=IssueFilter(product_id=product_id)), ReportFormat.CSV)
            async for _ in self.batches(actor, report):
                pass
            found.append(report)
        return found

    async def record(self, actor: Principal, report: Report, *, complete: bool) -> None:
        """Who took which report, of which organisation, with which filters and rows."""
        async with self._work() as uow:
            await uow.audit.add(self._audit.entry(
                "report.downloaded", actor, "report", report.query.kind.value,
                report.cabinet_id, format=report.format.value,
                organisation=report.organisation, filters=report.query.shown(),
                rows=report.rows_written, complete=complete))
            await uow.commit()
        report.recorded = True

    # ---- parts

    async def _page(self, actor: Principal, query: ReportQuery,
                    page: PageRequest) -> tuple[list[Row], str | None]:
        """One page of the list the JSON API answers, as rows, and where the next begins."""
        if query.kind is ReportKind.ISSUES:
            issues = await self._support.list_visible(
                actor, query.issues, page, query.cabinet_id,
                include_children=query.include_children)
            return [issue_row(row) for row in issues.items], _after(issues.next_cursor,
                                                                   issues.items)
        kind = query.kind.document_kind
        documents = await self._licensing.list_visible(
            actor, kind, replace(query.documents, cabinet_id=query.cabinet_id,
                                 include_children=query.include_children), page)
        build = license_row if query.kind is ReportKind.LICENSES else certificate_row
        return [build(view) for view in documents.items], _after(documents.next_cursor,
                                                                 documents.items)

    async def _organisation(self, actor: Principal, cabinet_id: str | None) -> str:
        wanted = cabinet_id or actor.cabinet_id
        if wanted is None or (cabinet_id is None and access.sees_everyone(actor)):
            return "All customers"
        async with self._work(read_only=True) as uow:
            found = await uow.cabinets.get(wanted, EVERYTHING)
        return found.name if found else "Organisation"


def _after(cursor: str | None, items: Any) -> str | None:
    """The id the next page starts after (the lists' cursors are encoded ids)."""
    return items[-1].id if cursor is not None and items else None


def license_row(view: DocumentView) -> Row:
    document = view.document
    return (document.number, view.product.name, getattr(document, "edition", ""),
            getattr(document, "seats", None), view.cabinet.name, document.valid_from,
            document.valid_to, view.status.label, view.days_left)


def certificate_row(view: DocumentView) -> Row:
    document = view.document
    return (document.number, view.product.name, getattr(document, "level", "").capitalize(),
            view.cabinet.name, document.valid_from, document.valid_to,
            view.status.label, view.days_left, view.license_number)


def issue_row(row: IssueRow) -> Row:
    issue = row.issue
    return (issue.number, issue.subject, row.product_name,
            issue.status.value.replace("_", " ").capitalize(), issue.priority.label,
            issue.created_at, issue.first_response_at, issue.resolved_at, row.breached,
            issue.author_name, row.cabinet_name)

