"""Reading the audit log: staff all of it, a customer administrator their subtree's; a page
at a time with the count, or every entry for an export."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

from app.domain import access
from app.domain.audit import AUDIT_SORTS, AuditEntry, AuditFilter
from app.domain.paging import MAX_SEARCH, Page, PageRequest, check_sort
from app.domain.users import Principal
from app.services.work import UseCases
from ports.storage import UnitOfWork

# Entries read at a time for an export.
EXPORT_BATCH = 500


async def audit_page(uow: UnitOfWork, actor: Principal, filters: AuditFilter,
                     page: PageRequest) -> Page[AuditEntry]:
    """The entries the actor may read that pass the filters; a numbered page with the count."""
    if page.sort is not None:
        check_sort(page.sort, AUDIT_SORTS)
    filters = replace(filters, actor=filters.actor[:MAX_SEARCH])
    scope = access.visible_scope(actor)
    if filters.cabinet_id is not None:
        cabinet = access.require_visible(actor, await uow.cabinets.get(filters.cabinet_id, scope),
                                         "organisation")
        scope = access.Scope.subtree(cabinet.path)
    rows = await uow.audit.list_visible(scope, page, filters)
    if page.sort is None:
        return Page.from_rows(rows, page)
    return Page.numbered(rows, page, await uow.audit.count_visible(scope, filters))


class AuditLogService(UseCases):
    async def entries(self, actor: Principal, filters: AuditFilter,
                   page: PageRequest) -> Page[AuditEntry]:
        access.require_may_read_audit(actor)
        async with self._work(read_only=True) as uow:
            return await audit_page(uow, actor, filters, page)

    async def batches(self, actor: Principal,
                      filters: AuditFilter) -> AsyncIterator[list[AuditEntry]]:
        """Every entry that passes, oldest first, a batch (and a short transaction) at a time."""
        access.require_may_read_audit(actor)
        after: str | None = None
        while True:
            async with self._work(read_only=True) as uow:
                page = await audit_page(uow, actor, filters, PageRequest(EXPORT_BATCH, after))
            if page.items:
                yield list(page.items)
            if page.next_cursor is None:
                return
            after = page.items[-1].id
