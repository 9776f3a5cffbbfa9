"""Licenses, support certificates and their transfers in SQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

from adapters.sql.cabinets import CABINET_COLUMNS, cabinet_of
from adapters.sql.catalog import PRODUCT_COLUMNS, product_of
from adapters.sql.session import Row, SqlSession
from adapters.sql.statements import Joined, contains, in_list, nulls_last, paged, scope_filter
from app.domain.access import Scope
from app.domain.cabinets import Cabinet
from app.domain.licensing import (
    Certificate,
    DocumentFilter,
    DocumentKind,
    DocumentStatus,
    License,
    Transfer,
)
from app.domain.paging import PageRequest
from app.domain.products import Product
from ports.storage.licensing import Described

D = TypeVar("D", License, Certificate)
# Ids in one IN list, and rows in one INSERT: well under SQLite's limit on parameters.
_IDS_AT_ONCE = 500
_ROWS_AT_ONCE = 200


_DOCUMENT_COLUMNS = ("id", "number", "product_id", "cabinet_id", "valid_from", "valid_to",
                     "revoked_at", "purchase_item", "created_at", "updated_at")
_PRODUCT = Joined(PRODUCT_COLUMNS, "p")
_OWNER = Joined(CABINET_COLUMNS, "c")
_STATUS = {
    DocumentStatus.PENDING: "d.revoked_at IS NULL AND d.valid_from > :today"
                            " AND (d.valid_to IS NULL OR d.valid_to >= :today)",
    DocumentStatus.ACTIVE: "d.revoked_at IS NULL AND d.valid_from <= :today"
                           " AND (d.valid_to IS NULL OR d.valid_to >= :today)",
    DocumentStatus.EXPIRED: "d.revoked_at IS NULL AND d.valid_to < :today",
    DocumentStatus.REVOKED: "d.revoked_at IS NOT NULL",
}
_SORTS = {"number": ("d.number",), "product": ("LOWER(p.name)",),
          "holder": ("LOWER(c.name)",), "valid_to": nulls_last("d.valid_to")}


class _SqlDocuments(Generic[D]):
    """One table of issued documents; the subclasses name the table and its own columns."""

    table: ClassVar[str]
    own_columns: ClassVar[tuple[str, ...]]
    make: Callable[..., D]
    # What `get_described` adds of the kind's own: a join and its columns.
    described_join: ClassVar[str] = ""
    described_columns: ClassVar[str] = ""

    _columns: ClassVar[tuple[str, ...]]
    _column_list: ClassVar[str]
    _select: ClassVar[str]
    _described: ClassVar[str]
    _described_joins: ClassVar[str]

    def __init_subclass__(cls) -> None:
        # Built once per kind: a unit of work makes its repositories anew each time.
        super().__init_subclass__()
        cls._columns = (*_DOCUMENT_COLUMNS, *cls.own_columns)
        cls._column_list = ", ".join(cls._columns)
        cls._select = ", ".join(f"d.{column}" for column in cls._columns)
        # The document, its product and its owner in one row: one statement where three
        # were (a read's statements are most of its cost).
        cls._described = (f"{cls._select}, {_PRODUCT.select}, {_OWNER.select}"
                          f"{cls.described_columns}")
        cls._described_joins = f" JOIN products p ON p.id = d.product_id{cls.described_join}"

    def __init__(self, db: SqlSession) -> None:
        self._db = db

    def _described_of(self, rows: list[Row]) -> list[Described[D]]:
        # A page names a few products and owners many times over: each is made once.
        products: dict[str, Product] = {}
        owners: dict[str, Cabinet] = {}
        described = []
        for row in rows:
            product = products.get(row[_PRODUCT.id])
            if product is None:
                product = products[row[_PRODUCT.id]] = product_of(_PRODUCT.of(row))
            owner = owners.get(row[_OWNER.id])
            if owner is None:
                owner = owners[row[_OWNER.id]] = cabinet_of(_OWNER.of(row))
            described.append(Described(
                self.make(**{column: row[column] for column in self._columns}), product, owner,
                row.get("license_number")))
        return described

    async def add(self, *documents: D) -> None:
        # A purchase issues a hundred at a time: one statement per few hundred, not per row.
        for start in range(0, len(documents), _ROWS_AT_ONCE):
            await self._db.insert(self.table, self._column_list, [
                {column: getattr(document, column) for column in self._columns}
                for document in documents[start:start + _ROWS_AT_ONCE]])

    def _lock(self, for_update: bool) -> str:
        return f"{self._db.for_update} OF d" if for_update and self._db.for_update else ""

    async def _one(self, where: str, params: dict[str, Any], scope: Scope,
                   for_update: bool = False) -> D | None:
        in_scope, scope_params = scope_filter(scope, "c.path")
        lock = self._lock(for_update)
        row = await self._db.fetch_one(
            f"SELECT {self._select} FROM {self.table} d JOIN cabinets c ON c.id = d.cabinet_id"
            f" WHERE {where} AND {in_scope}{lock}", {**params, **scope_params})
        return self.make(**row) if row else None

    async def get(self, document_id: str, scope: Scope, *, for_update: bool = False) -> D | None:
        return await self._one("d.id = :id", {"id": document_id}, scope, for_update)

    async def get_described(self, document_id: str, scope: Scope) -> Described[D] | None:
        in_scope, scope_params = scope_filter(scope, "c.path")
        row = await self._db.fetch_one(
            f"SELECT {self._described} FROM {self.table} d JOIN cabinets c"
            f" ON c.id = d.cabinet_id{self._described_joins} WHERE d.id = :id AND {in_scope}",
            {"id": document_id, **scope_params})
        return self._described_of([row])[0] if row else None

    async def get_by_number(self, number: str, scope: Scope) -> D | None:
        return await self._one("d.number = :number", {"number": number}, scope)

    async def by_purchase_items(self, purchase_items: list[str], scope: Scope,
                                *, for_update: bool = False) -> dict[str, D]:
        if not purchase_items:
            return {}
        in_scope, params = scope_filter(scope, "c.path")
        rows = await self._db.fetch_all(
            f"SELECT {self._select} FROM {self.table} d JOIN cabinets c ON c.id = d.cabinet_id"
            f" WHERE d.purchase_item IN ({self._db.listed('items')}) AND {in_scope}"
            f" ORDER BY d.id{self._lock(for_update)}", {**params, "items": purchase_items})
        return {row["purchase_item"]: self.make(**row) for row in rows}

    async def numbers_taken(self, numbers: list[str]) -> set[str]:
        if not numbers:
            return set()
        rows = await self._db.fetch_all(
            f"SELECT number FROM {self.table} WHERE number IN ({self._db.listed('numbers')})",
            {"numbers": numbers})
        return {row["number"] for row in rows}

    async def numbers(self, document_ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(document_ids), _IDS_AT_ONCE):
            marks, params = in_list("id", document_ids[start:start + _IDS_AT_ONCE])
            rows = await self._db.fetch_all(
                f"SELECT id, number FROM {self.table} WHERE id IN ({marks})", params)
            found.update((row["id"], row["number"]) for row in rows)
        return found

    async def list_visible(self, scope: Scope, filters: DocumentFilter,
                           page: PageRequest) -> list[D]:
        return [self.make(**row) for row in await self._list(
            self._select, "", scope, filters, page)]

    async def list_described(self, scope: Scope, filters: DocumentFilter,
                             page: PageRequest) -> list[Described[D]]:
        return self._described_of(await self._list(
            self._described, self._described_joins, scope, filters, page))

    async def count_visible(self, scope: Scope, filters: DocumentFilter) -> int:
        where, params = self._where(scope, filters)
        row = await self._db.fetch_one(
            f"SELECT COUNT(*) AS n FROM {self.table} d JOIN cabinets c ON c.id = d.cabinet_id"
            f" WHERE {where}", params)
        return int(row["n"]) if row else 0

    async def _list(self, select: str, joins: str, scope: Scope, filters: DocumentFilter,
                    page: PageRequest) -> list[Row]:
        where, params = self._where(scope, filters)
        after, order, page_params = paged(page, "d.id", _SORTS)
        if page.sort is not None and page.sort.key == "product" and not joins:
            joins = " JOIN products p ON p.id = d.product_id"
        return await self._db.fetch_all(
            f"SELECT {select} FROM {self.table} d JOIN cabinets c ON c.id = d.cabinet_id{joins}"
            f" WHERE {where} AND {after}{order}", {**params, **page_params})

    @staticmethod
    def _where(scope: Scope, filters: DocumentFilter) -> tuple[str, dict[str, Any]]:
        in_scope, params = scope_filter(scope, "c.path")
        where = [in_scope]
        if filters.product_id is not None:
            where.append("d.product_id = :product_id")
        if filters.status is not None:
            where.append(_STATUS[filters.status])
        if filters.expires_before is not None:
            where.append("d.valid_to IS NOT NULL AND d.valid_to < :expires_before")
        if filters.search.strip():
            where.append("(LOWER(d.number) LIKE :search ESCAPE '!'"
                         " OR LOWER(c.name) LIKE :search ESCAPE '!')")
        return " AND ".join(where), {
            **params, "product_id": filters.product_id, "today": filters.today,
            "expires_before": filters.expires_before, "search": contains(filters.search)}

    async def update(self, document: D) -> None:
        changing = ("cabinet_id", "valid_from", "valid_to", "revoked_at", "updated_at",
                    *self.own_columns)
        await self._db.execute(
            f"UPDATE {self.table} SET {', '.join(f'{c} = :{c}' for c in changing)}"
            " WHERE id = :id", {"id": document.id, **{c: getattr(document, c) for c in changing}})


class SqlLicenses(_SqlDocuments[License]):
    table = "licenses"
    own_columns = ("edition", "seats")
    make = License


class SqlCertificates(_SqlDocuments[Certificate]):
    table = "certificates"
    own_columns = ("level", "license_id")
    make = Certificate
    described_join = " LEFT JOIN licenses l ON l.id = d.license_id"
    described_columns = ", l.number AS license_number"


class SqlTransfers:
    def __init__(self, db: SqlSession) -> None:
        self._db = db

    async def add(self, transfer: Transfer) -> None:
        await self._db.execute(
            "INSERT INTO document_transfers (id, kind, document_id, from_cabinet_id,"
            " to_cabinet_id, at, actor_id, actor_email) VALUES (:id, :kind, :document_id,"
            " :from_cabinet_id, :to_cabinet_id, :at, :actor_id, :actor_email)",
            {**vars(transfer), "kind": transfer.kind.value})

    async def of_document(self, document_id: str) -> list[Transfer]:
        rows = await self._db.fetch_all(
            "SELECT id, kind, document_id, from_cabinet_id, to_cabinet_id, at, actor_id,"
            " actor_email FROM document_transfers WHERE document_id = :document_id ORDER BY id",
            {"document_id": document_id})
        return [Transfer(**{**row, "kind": DocumentKind(row["kind"])}) for row in rows]
