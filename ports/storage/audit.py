"""The audit log: who did what to which object."""

from __future__ import annotations

from typing import Protocol

from app.domain.access import Scope
from app.domain.audit import EVERY_ENTRY, AuditEntry, AuditFilter
from app.domain.paging import PageRequest


class AuditRepository(Protocol):
    async def add(self, entry: AuditEntry) -> None: ...

    async def list_visible(self, scope: Scope, page: PageRequest,
                           filters: AuditFilter = EVERY_ENTRY) -> list[AuditEntry]:
        """Entries about cabinets in scope (staff: also entries with no cabinet) passing the
        filters: by id (oldest first) after the cursor, or a numbered page by `at`."""

    async def count_visible(self, scope: Scope, filters: AuditFilter = EVERY_ENTRY) -> int:
        """How many `list_visible` pages through."""
