"""Scheduled reports: a report a user asked to be sent weekly or monthly, and the periods
that decide when one is due. Each period's report is sent once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from app.domain.reports import ReportFormat, ReportKind


class Cadence(StrEnum):
    WEEKLY = "weekly"
    MONTHLY = "monthly"

    @property
    def label(self) -> str:
        return self.value.capitalize()


@dataclass(frozen=True)
class ReportSubscription:
    id: str
    user_id: str
    # The organisation the report is of (its owner's reach is checked each time);
    # None: every customer (staff only).
    cabinet_id: str | None
    kind: ReportKind
    format: ReportFormat
    cadence: Cadence
    include_children: bool
    product_id: str | None
    created_at: datetime


def period_of(cadence: Cadence, day: date) -> str:
    """"2026-W49" (ISO weeks) or "2026-12": a report is due once in each."""
    if cadence is Cadence.WEEKLY:
        year, week, _ = day.isocalendar()
        return f"{year:04d}-W{week:02d}"
    return f"{day.year:04d}-{day.month:02d}"
