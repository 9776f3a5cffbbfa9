"""The audit log in SQL."""

from __future__ import annotations

from typing import Any

from adapters.sql.session import SqlSession
from adapters.sql.statements import contains, escaped, paged, scope_filter
from app.domain.access import Scope
from app.domain.audit import EVERY_ENTRY, AuditEntry, AuditFilter
from app.domain.paging import PageRequest

_SORTS = {"at": ("a.at",)}


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
                           filters: AuditFilter = EVERY_ENTRY) -> list[AuditEntry]:
        where, params = self._where(scope, filters)
        after, order, page_params = paged(page, "a.id", _SORTS)
        rows = await self._db.fetch_all(
            "SELECT a.id, a.at, a.action, a.actor_id, a.actor_email, a.object_type, a.object_id,"
            " a.cabinet_id, a.address, a.details FROM audit_log a"
            " LEFT JOIN cabinets c ON c.id = a.cabinet_id"
            f" WHERE {where} AND {after}{order}", {**params, **page_params})
        return [AuditEntry(**row) for row in rows]

    async def count_visible(self, scope: Scope, filters: AuditFilter = EVERY_ENTRY) -> int:
        where, params = self._where(scope, filters)
        row = await self._db.fetch_one(
            "SELECT COUNT(*) AS n FROM audit_log a LEFT JOIN cabinets c ON c.id = a.cabinet_id"
            f" WHERE {where}", params)
        return int(row["n"]) if row else 0

    def _where(self, scope: Scope, filters: AuditFilter) -> tuple[str, dict[str, Any]]:
        in_scope, params = scope_filter(scope, "c.path")
        where = [in_scope]
        if filters.object_id:
            where.append("a.object_id = :object_id")
        if filters.action:
            where.append("(a.action = :action OR a.action LIKE :family ESCAPE '!')")
        if filters.actor.strip():
            where.append("LOWER(a.actor_email) LIKE :actor ESCAPE '!'")
        if filters.since is not None:
            where.append("a.at >= :since")
        if filters.before is not None:
            where.append("a.at < :before")
        if filters.product:
            product = ("a.details ->> 'product'" if self._db.dialect == "postgres"
                       else "json_extract(a.details, '$.product')")
            where.append(f"{product} = :product")
        family = escaped(filters.action or "") + ".%"
        return " AND ".join(where), {
            **params, "object_id": filters.object_id, "action": filters.action,
            "family": family, "actor": contains(filters.actor), "since": filters.since,
            "before": filters.before, "product": filters.product}
