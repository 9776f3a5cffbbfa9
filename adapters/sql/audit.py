"""The audit log in SQL."""

from __future__ import annotations

from adapters.sql.session import SqlSession
from adapters.sql.statements import page_filter, scope_filter
from app.domain.access import Scope
from app.domain.audit import AuditEntry
from app.domain.paging import PageRequest


class SqlAudit:
    def __init__(self, db: SqlSession) -> None:
        self._db = db

    async def add(self, entry: AuditEntry) -> None:
        await self._db.execute(
            "INSERT INTO audit_log (id, at, action, actor_id, actor_email, object_type,"
            " object_id, cabinet_id, address, details) VALUES (:id, :at, :action, :actor_id,"
            " :actor_email, :object_type, :object_id, :cabinet_id, :address, :details)",
            vars(entry))

    async def list_visible(self, scope: Scope, page: PageRequest,
                           object_id: str | None = None,
                           action: str | None = None) -> list[AuditEntry]:
        in_scope, scope_params = scope_filter(scope, "c.path")
        after, page_params = page_filter(page, "a.id")
        about = "a.object_id = :object_id" if object_id else "1 = 1"
        if action:
            about += " AND a.action = :action"
        rows = await self._db.fetch_all(
            "SELECT a.id, a.at, a.action, a.actor_id, a.actor_email, a.object_type, a.object_id,"
            " a.cabinet_id, a.address, a.details FROM audit_log a"
            " LEFT JOIN cabinets c ON c.id = a.cabinet_id"
            f" WHERE {in_scope} AND {after} AND {about} ORDER BY a.id LIMIT :page_limit",
            {**scope_params, **page_params, "object_id": object_id, "action": action},
        )
        return [AuditEntry(**row) for row in rows]
