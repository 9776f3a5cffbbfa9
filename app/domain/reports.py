"""Reports: the rows of the licenses, certificates and support requests lists as a table of
typed cells, what sums them up, and the cells no spreadsheet may take for a formula."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from app.domain.licensing import DocumentKind

# A cell as reports hold it: written as text, a number, a date or yes/no by each format.
Cell = str | int | bool | date | datetime | None
Row = tuple[Cell, ...]


class ReportKind(StrEnum):
    LICENSES = "licenses"
    CERTIFICATES = "certificates"
    ISSUES = "issues"

    @property
    def label(self) -> str:
        return {ReportKind.LICENSES: "Licenses", ReportKind.CERTIFICATES: "Support certificates",
                ReportKind.ISSUES: "Support requests"}[self]

    @property
    def document_kind(self) -> DocumentKind:
        """Licenses and certificates are documents; asked of requests, a ValueError."""
        if self is ReportKind.ISSUES:
            raise ValueError("support requests are not documents")
        return DocumentKind.LICENSE if self is ReportKind.LICENSES else \
            DocumentKind.CERTIFICATE


class ReportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    PDF = "pdf"

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self]


MEDIA_TYPES = {
    ReportFormat.CSV: "text/csv",
    ReportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ReportFormat.PDF: "application/pdf",
}


class CellKind(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    TIME = "time"
    FLAG = "flag"


@dataclass(frozen=True)
class Column:
    title: str
    kind: CellKind = CellKind.TEXT
    # Characters a spreadsheet shows of it at first.
    width: int = 14


COLUMNS: dict[ReportKind, tuple[Column, ...]] = {
    ReportKind.LICENSES: (
        Column("Number", width=17), Column("Product", width=18), Column("Edition"),
        Column("Seats", CellKind.NUMBER, 8), Column("Holder", width=26),
        Column("Valid from", CellKind.DATE, 12), Column("Valid to", CellKind.DATE, 12),
        Column("Status", width=10), Column("Days left", CellKind.NUMBER, 10)),
    ReportKind.CERTIFICATES: (
        Column("Number", width=17), Column("Product", width=18), Column("Level", width=12),
        Column("Holder", width=26), Column("Valid from", CellKind.DATE, 12),
        Column("Valid to", CellKind.DATE, 12), Column("Status", width=10),
        Column("Days left", CellKind.NUMBER, 10), Column("Covers license", width=17)),
    ReportKind.ISSUES: (
        Column("Number", width=16), Column("Subject", width=40), Column("Product", width=18),
        Column("Status", width=20), Column("Priority", width=10),
        Column("Created", CellKind.TIME, 18), Column("First response", CellKind.TIME, 18),
        Column("Resolved", CellKind.TIME, 18), Column("SLA breached", CellKind.FLAG, 12),
        Column("Author", width=20), Column("Organisation", width=26)),
}

# Where a row keeps what the summary counts by.
_STATUS = {ReportKind.LICENSES: 7, ReportKind.CERTIFICATES: 6, ReportKind.ISSUES: 3}
_PRODUCT = {ReportKind.LICENSES: 1, ReportKind.CERTIFICATES: 1, ReportKind.ISSUES: 2}
_ENDS = {ReportKind.LICENSES: 6, ReportKind.CERTIFICATES: 5}
_CREATED, _BREACHED = 5, 8

# OWASP ASVS 5.0 1.2.10: a cell beginning with one of these is a formula to a spreadsheet.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\x00")


def neutralise(text: str) -> str:
    """Text a spreadsheet shows as written: a leading quote before what would start a
    formula (or a DDE call), in CSV and XLSX alike."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def safe_cells(row: Row) -> Row:
    return tuple(neutralise(cell) if isinstance(cell, str) else cell for cell in row)


@dataclass
class Summary:
    """What a report adds up as its rows go by: counts by status and by product, documents
    ending within 30 and 90 days and per month for a year, requests whose targets were
    missed per month."""

    kind: ReportKind
    today: date
    rows: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_product: Counter[str] = field(default_factory=Counter)
    ending_30: int = 0
    ending_90: int = 0
    # "2027-03" -> count, for the twelve months from today's.
    ending_by_month: dict[str, int] = field(default_factory=dict)
    breaches_by_month: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        if not self.ending_by_month:
            self.ending_by_month = dict.fromkeys(months_from(self.today, 12), 0)

    def add(self, row: Row) -> None:
        self.rows += 1
        self.by_status[str(row[_STATUS[self.kind]])] += 1
        self.by_product[str(row[_PRODUCT[self.kind]])] += 1
        if self.kind is ReportKind.ISSUES:
            created = row[_CREATED]
            if row[_BREACHED] is True and isinstance(created, datetime):
                self.breaches_by_month[created.strftime("%Y-%m")] += 1
            return
        ends = row[_ENDS[self.kind]]
        if isinstance(ends, date) and ends >= self.today:
            days = (ends - self.today).days
            self.ending_30 += days <= 30
            self.ending_90 += days <= 90
            month = ends.strftime("%Y-%m")
            if month in self.ending_by_month:
                self.ending_by_month[month] += 1


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    # Of the chart's largest bar: 0 to 1.
    share: float


@dataclass(frozen=True)
class Chart:
    title: str
    bars: tuple[Bar, ...]
    # Columns side by side (months), or rows one under the other (names).
    columns: bool = False

    @classmethod
    def of(cls, title: str, pairs: list[tuple[str, int]], *, columns: bool = False) -> Chart:
        peak = max((value for _, value in pairs), default=0)
        return cls(title, tuple(Bar(label, value, value / peak if peak else 0.0)
                                for label, value in pairs), columns)


def charts(summary: Summary) -> list[Chart]:
    """What a report draws of its summary: the same on the dashboard and in the PDF."""
    by_status = Chart.of("By status", summary.by_status.most_common())
    by_product = Chart.of("By product", summary.by_product.most_common(12))
    if summary.kind is ReportKind.ISSUES:
        months = months_back(summary.today, 12)
        breaches = [(_month_label(m, n == 0), summary.breaches_by_month.get(m, 0))
                    for n, m in enumerate(months)]
        return [by_status, Chart.of("SLA breaches by month opened", breaches, columns=True),
                by_product]
    ending = [(_month_label(m, n == 0), count)
              for n, (m, count) in enumerate(summary.ending_by_month.items())]
    return [Chart.of("Ending by month, next 12 months", ending, columns=True), by_product,
            by_status]


def _month_label(month: str, first: bool) -> str:
    """"Mar"; with the year where it begins, and on the first bar: "Dec 26", "Jan 27"."""
    moment = datetime.strptime(month, "%Y-%m")
    return moment.strftime("%b %y" if first or moment.month == 1 else "%b")


def months_back(day: date, count: int) -> list[str]:
    """The `count` months up to and including the month of `day`, oldest first."""
    year, month = day.year, day.month
    found = []
    for _ in range(count):
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return found[::-1]


def months_from(day: date, count: int) -> list[str]:
    year, month = day.year, day.month
    found = []
    for _ in range(count):
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def filename(kind: ReportKind, organisation: str, day: date, fmt: ReportFormat) -> str:
    """"licenses-acme-llc-2026-12-06.csv": what, whose, when."""
    plain = unicodedata.normalize("NFKD", organisation).encode("ascii", "ignore").decode()
    slug = _UNSAFE_NAME.sub("-", plain.lower()).strip("-.")[:60] or "organisation"
    return f"{kind.value}-{slug}-{day.isoformat()}.{fmt.value}"
