"""Expiry reminders in SQL: what is due, and each stage recorded once."""

from __future__ import annotations

from datetime import date, datetime

from adapters.sql.session import SqlSession
from app.domain.cabinets import CabinetKind
from app.domain.licensing import (
    DocumentKind,
)
from app.domain.reminders import DueDocument
from app.domain.roles import Role


class SqlReminders:
    def __init__(self, db: SqlSession) -> None:
        self._db = db

    async def due(self, kind: DocumentKind, stage: int, first: date, last: date,
                  limit: int) -> list[DueDocument]:
        table = "licenses" if kind is DocumentKind.LICENSE else "certificates"
        rows = await self._db.fetch_all(
            f"SELECT d.id, d.number, d.cabinet_id, d.valid_to, c.name AS cabinet_name,"
            f" p.name AS product_name FROM {table} d"
            " JOIN cabinets c ON c.id = d.cabinet_id JOIN products p ON p.id = d.product_id"
            " WHERE d.valid_to >= :first AND d.valid_to <= :last AND d.revoked_at IS NULL"
            " AND NOT EXISTS (SELECT 1 FROM expiry_reminders r WHERE r.document_id = d.id"
            " AND r.valid_to = d.valid_to AND r.stage <= :stage)"
            " ORDER BY d.valid_to, d.id LIMIT :limit",
            {"first": first, "last": last, "stage": stage, "limit": limit})
        return [DueDocument(kind=kind, id=str(row["id"]), number=str(row["number"]),
                            cabinet_id=str(row["cabinet_id"]),
                            cabinet_name=str(row["cabinet_name"]),
                            product_name=str(row["product_name"]), valid_to=row["valid_to"])
                for row in rows]

    async def mark(self, document: DueDocument, stage: int, at: datetime) -> bool:
        return await self._db.execute(
            "INSERT INTO expiry_reminders (document_id, kind, valid_to, stage, sent_at)"
            " VALUES (:id, :kind, :valid_to, :stage, :at)"
            " ON CONFLICT (document_id, valid_to, stage) DO NOTHING",
            {"id": document.id, "kind": document.kind.value, "valid_to": document.valid_to,
             "stage": stage, "at": at}) == 1

    async def recipients(self, cabinet_id: str) -> list[str]:
        rows = await self._db.fetch_all(
            "SELECT u.id FROM users u JOIN cabinets home ON home.id = u.cabinet_id"
            " JOIN cabinets owner ON owner.id = :cabinet_id"
            " WHERE u.active AND u.deleted_at IS NULL AND (u.cabinet_id = owner.id"
            " OR (u.role = :admin AND home.kind = :customer"
            " AND owner.path LIKE home.path || '%')) ORDER BY u.id",
            {"cabinet_id": cabinet_id, "admin": Role.CUSTOMER_ADMIN.value,
             "customer": CabinetKind.CUSTOMER.value})
        return [str(row["id"]) for row in rows]
