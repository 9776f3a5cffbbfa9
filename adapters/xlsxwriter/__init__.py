"""Workbooks written by XlsxWriter in constant memory: each row goes to a temporary file as
it is written, so a report of any length costs a few megabytes. Measured: `in_memory`
silently turns constant memory off, and `strings_to_formulas` is on by default (a cell
"=HYPERLINK(...)" became a live formula), so both are set here. The work runs in a thread,
a batch at a time, never on the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from app.domain.reports import CellKind, Column, ReportKind, Row, Summary

# A sheet holds 1,048,576 rows; one of them is the header.
ROWS_PER_SHEET = 1_048_575
MAX_WIDTH = 60


class XlsxSpreadsheets:
    def __init__(self, rows_per_sheet: int = ROWS_PER_SHEET) -> None:
        self._rows_per_sheet = rows_per_sheet

    async def write(self, path: Path, title: str, columns: Sequence[Column],
                    batches: AsyncIterable[list[Row]], summary: Summary) -> None:
        book = await asyncio.to_thread(_Book, path, title, columns, self._rows_per_sheet)
        try:
            async for batch in batches:
                await asyncio.to_thread(book.add, batch)
            await asyncio.to_thread(book.finish, summary)
        except BaseException:
            await asyncio.to_thread(book.abandon)
            raise


class _Book:
    """One workbook, used by one thread at a time."""

    def __init__(self, path: Path, title: str, columns: Sequence[Column],
                 rows_per_sheet: int) -> None:
        import xlsxwriter  # on first use: the portal starts without it in memory

        self._book = xlsxwriter.Workbook(str(path), {
            "constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
            "strings_to_numbers": False, "tmpdir": str(path.parent),
            "default_date_format": "yyyy-mm-dd"})
        self._title = title[:25]
        self._columns = columns
        self._rows_per_sheet = rows_per_sheet
        self._bold = self._book.add_format({"bold": True, "bg_color": "#E2E8F0",
                                            "bottom": 1})
        self._day = self._book.add_format({"num_format": "yyyy-mm-dd"})
        self._moment = self._book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
        # First in the book, filled in last (constant memory wants each sheet's rows in
        # order, not the sheets).
        self._summary = self._book.add_worksheet("Summary")
        self._sheets: list[Any] = []
        self._row = 0
        self._widths = [max(c.width, len(c.title) + 2) for c in columns]
        self._sheet: Any = None
        self._next_sheet()

    def _next_sheet(self) -> None:
        if self._sheet is not None:
            self._close_sheet()
        number = len(self._sheets) + 1
        self._sheet = self._book.add_worksheet(
            self._title if number == 1 else f"{self._title} ({number})")
        self._sheets.append(self._sheet)
        for index, column in enumerate(self._columns):
            self._sheet.write_string(0, index, column.title, self._bold)
        self._sheet.freeze_panes(1, 0)
        self._row = 0

    def _close_sheet(self) -> None:
        last = len(self._columns) - 1
        self._sheet.autofilter(0, 0, max(self._row, 1), last)
        for index, width in enumerate(self._widths):
            self._sheet.set_column(index, index, min(width, MAX_WIDTH))

    def add(self, batch: list[Row]) -> None:
        for row in batch:
            if self._row == self._rows_per_sheet:
                self._next_sheet()
            self._row += 1
            for index, (cell, column) in enumerate(zip(row, self._columns, strict=True)):
                self._cell(self._row, index, cell, column)

    def _cell(self, row: int, index: int, cell: Any, column: Column) -> None:
        sheet = self._sheet
        if cell is None:
            return
        if column.kind is CellKind.FLAG:
            sheet.write_string(row, index, "yes" if cell else "no")
        elif isinstance(cell, datetime):
            sheet.write_datetime(row, index, cell.replace(tzinfo=None), self._moment)
        elif isinstance(cell, date):
            sheet.write_datetime(row, index, cell, self._day)
        elif isinstance(cell, bool | int):
            sheet.write_number(row, index, int(cell))
        else:
            text = str(cell)
            sheet.write_string(row, index, text)
            if len(text) + 2 > self._widths[index]:
                self._widths[index] = len(text) + 2

    def finish(self, summary: Summary) -> None:
        self._close_sheet()
        sheet, bold = self._summary, self._bold
        sheet.set_column(0, 0, 34)
        sheet.set_column(1, 1, 12)
        lines: list[tuple[str, Any]] = [(self._title, None), ("Rows", summary.rows)]
        if summary.kind is not ReportKind.ISSUES:
            lines += [("Ending within 30 days", summary.ending_30),
                      ("Ending within 90 days", summary.ending_90)]
        lines += [("", None), ("By status", None), *sorted(summary.by_status.items()),
                  ("", None), ("By product", None), *sorted(summary.by_product.items())]
        if summary.kind is ReportKind.ISSUES:
            lines += [("", None), ("SLA breaches by month opened", None),
                      *sorted(summary.breaches_by_month.items())]
        else:
            lines += [("", None), ("Ending by month", None), *summary.ending_by_month.items()]
        for number, (label, value) in enumerate(lines):
            if value is None:
                sheet.write_string(number, 0, label, bold if label else None)
            else:
                sheet.write_string(number, 0, label)
                sheet.write_number(number, 1, value)
        self._book.close()

    def abandon(self) -> None:
        """Give up on the workbook: its temporary files go, the result is not written."""
        for sheet in self._book.worksheets():
            handle, name = sheet.row_data_fh, sheet.row_data_filename
            if handle is not None:
                handle.close()
            if name:
                Path(name).unlink(missing_ok=True)
