"""Reports over HTTP: the list paths answer CSV, XLSX or PDF when `format` (or Accept) asks
for one. Everything is checked before the first byte; CSV leaves as its rows are read; the
workbook is written to a temporary file off the event loop, then sent and removed."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import date, datetime
from pathlib import Path

from aiohttp import web

from app.domain.reports import MEDIA_TYPES, CellKind, Column, ReportFormat, Row
from app.services.reports import Report, ReportQuery
from app.web.api.common import principal, services
from ports.objects import attachment_header

log = logging.getLogger(__name__)
REPORT_MEDIA = tuple(MEDIA_TYPES.values())
CHUNK = 256 * 1024
FORMAT_DESCRIPTION = ("json (the default) for the list; csv, xlsx or pdf for a report of every "
                      "row the same filters select (no paging: `limit` and `cursor` are "
                      "ignored). Without it, an Accept header naming one of their media types "
                      "and not application/json chooses too.")


def wanted_report(request: web.Request, given: str | None) -> ReportFormat | None:
    """The report format asked for, or None for the JSON list."""
    if given:
        return None if given == "json" else ReportFormat(given)
    accept = request.headers.get("Accept", "")
    if "application/json" in accept:
        return None
    return next((fmt for fmt, media in MEDIA_TYPES.items() if media in accept), None)


async def report_response(request: web.Request, query: ReportQuery,
                          fmt: ReportFormat) -> web.StreamResponse:
    reports, actor = services(request).reports, principal(request)
    report = await reports.prepare(actor, query, fmt)
    headers = {"Content-Disposition": attachment_header(report.filename),
               "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff",
               "Vary": "Accept"}
    async def complete() -> None:
        # Before the last byte: whoever has the whole file finds it in the audit log.
        await reports.record(actor, report, complete=True)

    try:
        if fmt is ReportFormat.PDF:
            body = await reports.pdf(actor, report)
            await complete()
            return web.Response(body=body, content_type=fmt.media_type, headers=headers)
        if fmt is ReportFormat.XLSX:
            return await _xlsx(request, report, headers, complete)
        return await _csv(request, report, headers, complete)
    except BaseException:
        if fmt is ReportFormat.CSV and report.rows_written and not report.recorded:
            # Rows went out before it broke off (the client left, the database failed):
            # that is a download too. Shielded, so a cancelled request still says so.
            await asyncio.shield(reports.record(actor, report, complete=False))
        raise


async def _csv(request: web.Request, report: Report, headers: dict[str, str],
               complete: Callable[[], Awaitable[None]]) -> web.StreamResponse:
    return await stream_csv(request, report.columns, services(request).reports.batches(
        principal(request), report), headers, complete)


async def stream_csv(request: web.Request, columns: Sequence[Column],
                     batches: AsyncIterator[list[Row]], headers: dict[str, str],
                     complete: Callable[[], Awaitable[None]] | None = None
                     ) -> web.StreamResponse:
    """A CSV file of `columns` that leaves a batch of rows at a time; `complete` runs
    before its last byte. The rows' cells must already be safe for a spreadsheet."""
    response = web.StreamResponse(headers=headers)
    response.content_type = "text/csv"
    response.charset = "utf-8"
    await response.prepare(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: CRLF, fields quoted when they need it
    writer.writerow([column.title for column in columns])
    await response.write(buffer.getvalue().encode())
    kinds = [column.kind for column in columns]
    async for batch in batches:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([_text(row, kinds) for row in batch])
        await response.write(buffer.getvalue().encode())
    if complete is not None:
        await complete()
    await response.write_eof()
    return response


def _text(row: Row, kinds: list[CellKind]) -> list[str]:
    cells = []
    for cell, kind in zip(row, kinds, strict=True):
        if cell is None:
            cells.append("")
        elif kind is CellKind.FLAG:
            cells.append("yes" if cell else "no")
        elif isinstance(cell, datetime):
            cells.append(cell.isoformat(timespec="seconds"))
        elif isinstance(cell, date):
            cells.append(cell.isoformat())
        else:
            cells.append(str(cell))
    return cells


async def _xlsx(request: web.Request, report: Report, headers: dict[str, str],
                complete: Callable[[], Awaitable[None]]) -> web.StreamResponse:
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="portal-report-"))
    try:
        path = folder / report.filename
        await services(request).reports.xlsx(principal(request), report, path)
        response = web.StreamResponse(headers=headers)
        response.content_type = ReportFormat.XLSX.media_type
        with path.open("rb") as workbook:
            response.content_length = os.fstat(workbook.fileno()).st_size
            await response.prepare(request)
            while chunk := await asyncio.to_thread(workbook.read, CHUNK):
                await response.write(chunk)
        await complete()
        await response.write_eof()
        return response
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)
