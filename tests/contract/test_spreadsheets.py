"""Contract of the spreadsheet port, against XlsxWriter read back by openpyxl: rows in order,
text never a formula, real dates and numbers, a bold frozen filtered header, a summary sheet
first, further sheets past a sheet's rows, and nothing left behind when the rows fail."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import openpyxl
import pytest

from adapters.xlsxwriter import XlsxSpreadsheets
from app.domain.reports import COLUMNS, ReportKind, Row, Summary, safe_cells

COLUMNS_OF = COLUMNS[ReportKind.LICENSES]


def licence(n: int, holder: str = "Acme") -> Row:
    return (f"LIC-2026-{n:06d}", "DB Guard", "Enterprise", n, holder, date(2026, 1, 1),
            date(2027, 1, n % 28 + 1), "Active", 100 + n)


async def batches(rows: list[Row], size: int = 2) -> AsyncIterator[list[Row]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


async def test_rows_come_back_in_order_with_real_cells(tmp_path: Path) -> None:
    rows = [safe_cells(licence(n, holder)) for n, holder in
            enumerate(["Acme", "=HYPERLINK(\"http://x\",\"y\")", "Globex", "@SUM(A1)"], 1)]
    summary = Summary(ReportKind.LICENSES, date(2026, 12, 6))
    for row in rows:
        summary.add(row)
    path = tmp_path / "report.xlsx"
    await XlsxSpreadsheets().write(path, "Licenses", COLUMNS_OF, batches(rows), summary)
    book = openpyxl.load_workbook(io.BytesIO(path.read_bytes()))
    assert book.sheetnames == ["Summary", "Licenses"]
    sheet = book["Licenses"]
    values = list(sheet.iter_rows(values_only=True))
    assert values[0] == tuple(c.title for c in COLUMNS_OF)
    assert [v[0] for v in values[1:]] == [r[0] for r in rows]
    assert values[2][4] == "'=HYPERLINK(\"http://x\",\"y\")" and values[4][4] == "'@SUM(A1)"
    assert all(cell.data_type != "f" for line in sheet.iter_rows() for cell in line)
    assert values[1][5] == datetime(2026, 1, 1) and values[1][3] == 1
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:I5"
    assert sheet["A1"].font.bold and sheet.column_dimensions["E"].width >= 20
    summary_rows = {r[0]: r[1] for r in book["Summary"].iter_rows(values_only=True)}
    assert summary_rows["Rows"] == 4 and summary_rows["DB Guard"] == 4


async def test_more_rows_than_a_sheet_holds_go_on_to_the_next(tmp_path: Path) -> None:
    rows = [licence(n) for n in range(1, 8)]
    path = tmp_path / "long.xlsx"
    await XlsxSpreadsheets(rows_per_sheet=3).write(
        path, "Licenses", COLUMNS_OF, batches(rows, 4), Summary(ReportKind.LICENSES,
                                                              date(2026, 12, 6)))
    book = openpyxl.load_workbook(io.BytesIO(path.read_bytes()))
    assert book.sheetnames == ["Summary", "Licenses", "Licenses (2)", "Licenses (3)"]
    numbers = []
    for sheet in book.worksheets[1:]:
        values = list(sheet.iter_rows(values_only=True))
        assert values[0][0] == "Number"  # each sheet has its header
        numbers += [v[0] for v in values[1:]]
    assert numbers == [r[0] for r in rows]


async def test_empty_and_dated_moments(tmp_path: Path) -> None:
    moment = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
    row: Row = ("SR-2026-000001", "Subject", "DB Guard", "Open", "High", moment, None, None,
                True, "Bob", "Acme")
    path = tmp_path / "issues.xlsx"
    await XlsxSpreadsheets().write(path, "Support requests", COLUMNS[ReportKind.ISSUES],
                                   batches([row]), Summary(ReportKind.ISSUES, date(2026, 12, 6)))
    book = openpyxl.load_workbook(io.BytesIO(path.read_bytes()))
    values = list(book.worksheets[1].iter_rows(values_only=True))
    assert values[1][5] == datetime(2026, 12, 6, 9, 30) and values[1][6] is None
    assert values[1][8] == "yes"


async def test_a_failure_while_rows_are_read_leaves_no_file_behind(tmp_path: Path) -> None:
    async def failing() -> AsyncIterator[list[Row]]:
        yield [licence(1)]
        raise ConnectionError("the database went away")

    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(ConnectionError):
        await XlsxSpreadsheets().write(folder / "broken.xlsx", "Licenses", COLUMNS_OF,
                                       failing(), Summary(ReportKind.LICENSES,
                                                          date(2026, 12, 6)))
    assert list(folder.iterdir()) == []
