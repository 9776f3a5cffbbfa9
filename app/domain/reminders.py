"""Expiry reminders: when a license or support certificate is about to end, and when it has."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from app.domain.errors import Invalid
from app.domain.licensing import DocumentKind

# The stage of the notice sent once a document has ended.
EXPIRED = 0


@dataclass(frozen=True)
class ReminderPolicy:
    # Days before the end date at which a reminder goes out, e.g. (30, 7, 1).
    days_before: tuple[int, ...]
    # An end date further back than this gets no "expired" notice: not the years of old
    # documents a new installation starts with, yet one missed while the portal was down.
    lookback_days: int = 7

    def __post_init__(self) -> None:
        if any(days < 1 for days in self.days_before):
            raise Invalid("Reminders go out at least one day before the end date.")

    @property
    def stages(self) -> list[int]:
        """The stages in the order a run handles them: the nearest first, so a document
        found late (five days left, nothing sent) gets only the nearest reminder, which
        also stands for the earlier ones."""
        return [EXPIRED, *sorted(set(self.days_before))]

    def window(self, stage: int, today: date) -> tuple[date, date]:
        """The end dates (inclusive) of the documents at this stage today."""
        if stage == EXPIRED:
            return today - timedelta(days=self.lookback_days), today - timedelta(days=1)
        return today, today + timedelta(days=stage)


@dataclass(frozen=True)
class DueDocument:
    """A document at a reminder stage it has not been reminded of."""

    kind: DocumentKind
    id: str
    number: str
    cabinet_id: str
    cabinet_name: str
    product_name: str
    valid_to: date


def when(valid_to: date, today: date) -> str:
    """How soon a document ends, in words."""
    days = (valid_to - today).days
    if days <= 0:
        return "today"
    if days == 1:
        return "tomorrow"
    return f"in {days} days"
