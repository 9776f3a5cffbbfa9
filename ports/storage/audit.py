"""The audit log: who did what to which object."""

from __future__ import annotations

from typing import Protocol

from app.domain.access import Scope
from app.domain.audit import AuditEntry
from app.domain.paging import PageRequest


class AuditRepository(Protocol):
    async def add(self, entry: AuditEntry) -> None: ...

    async def list_visible(self, scope: Scope, page: PageRequest,
                           object_id: str | None = None,
                           action: str | None = None) -> list[AuditEntry]:
        """Entries about cabinets in scope (staff: also entries with no cabinet), newest last."""
