"""Expiry reminders: what is due, and each stage recorded once."""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol

from app.domain.licensing import DocumentKind
from app.domain.reminders import DueDocument


class ReminderRepository(Protocol):
    async def due(self, kind: DocumentKind, stage: int, first: date, last: date,
                  limit: int) -> list[DueDocument]:
        """Documents of this kind ending between first and last (inclusive), not revoked,
        not yet reminded at this stage or a nearer one for their present end date."""

    async def mark(self, document: DueDocument, stage: int, at: datetime) -> bool:
        """Record the reminder; False when it was already recorded."""

    async def recipients(self, cabinet_id: str) -> list[str]:
        """Who hears of a cabinet's documents: its active users and the admins of the
        customer cabinets above it."""
