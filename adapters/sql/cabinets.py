"""Cabinets (organisations) in SQL: a tree by materialised path."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapters.sql.session import Row, SqlSession
from adapters.sql.statements import contains, in_list, paged, scope_filter
from app.domain.access import Scope
from app.domain.cabinets import Cabinet, CabinetKind
from app.domain.paging import PageRequest

CABINET_COLUMNS = ("c.id, c.name, c.kind, c.parent_id, c.path, c.external_id, c.created_at,"
                    " c.updated_at, c.contact_email")


def cabinet_of(row: Row) -> Cabinet:
    return Cabinet(id=row["id"], name=row["name"], kind=CabinetKind(row["kind"]),
                   parent_id=row["parent_id"], path=row["path"], external_id=row["external_id"],
                   created_at=row["created_at"], updated_at=row["updated_at"],
                   contact_email=row["contact_email"])


_SORTS = {"name": ("LOWER(c.name)",), "kind": ("c.kind",), "created": ("c.created_at",)}


def _searched(search: str) -> tuple[str, dict[str, Any]]:
    if not search.strip():
        return "1 = 1", {}
    return ("(LOWER(c.name) LIKE :search ESCAPE '!'"
            " OR LOWER(c.external_id) LIKE :search ESCAPE '!')"), {"search": contains(search)}


class SqlCabinets:
    def __init__(self, db: SqlSession) -> None:
        self._db = db

    async def add(self, cabinet: Cabinet) -> None:
        await self._db.execute(
            "INSERT INTO cabinets (id, name, kind, parent_id, path, external_id, created_at,"
            " updated_at, contact_email) VALUES (:id, :name, :kind, :parent_id, :path,"
            " :external_id, :created_at, :updated_at, :contact_email)",
            {**vars(cabinet), "kind": cabinet.kind.value},
        )

    async def _one(self, where: str, params: dict[str, Any], scope: Scope,
                   for_update: bool = False) -> Cabinet | None:
        in_scope, scope_params = scope_filter(scope, "c.path")
        lock = self._db.for_update if for_update else ""
        row = await self._db.fetch_one(
            f"SELECT {CABINET_COLUMNS} FROM cabinets c WHERE {where} AND {in_scope}{lock}",
            {**params, **scope_params},
        )
        return cabinet_of(row) if row else None

    async def get(self, cabinet_id: str, scope: Scope, *,
                  for_update: bool = False) -> Cabinet | None:
        return await self._one("c.id = :id", {"id": cabinet_id}, scope, for_update)

    async def get_by_external_id(self, external_id: str, scope: Scope) -> Cabinet | None:
        return await self._one("c.external_id = :external_id", {"external_id": external_id}, scope)

    async def get_many(self, cabinet_ids: list[str], scope: Scope) -> list[Cabinet]:
        if not cabinet_ids:
            return []
        listed, names = in_list("id", cabinet_ids)
        in_scope, scope_params = scope_filter(scope, "c.path")
        rows = await self._db.fetch_all(
            f"SELECT {CABINET_COLUMNS} FROM cabinets c"
            f" WHERE c.id IN ({listed}) AND {in_scope}"
            " ORDER BY c.id",
            {**names, **scope_params},
        )
        return [cabinet_of(row) for row in rows]

    async def _page(self, where: str, params: dict[str, Any], scope: Scope,
                    page: PageRequest) -> list[Cabinet]:
        in_scope, scope_params = scope_filter(scope, "c.path")
        after, order, page_params = paged(page, "c.id", _SORTS)
        rows = await self._db.fetch_all(
            f"SELECT {CABINET_COLUMNS} FROM cabinets c WHERE {where} AND {in_scope} AND {after}"
            f"{order}", {**params, **scope_params, **page_params},
        )
        return [cabinet_of(row) for row in rows]

    async def list_visible(self, scope: Scope, page: PageRequest,
                           search: str = "") -> list[Cabinet]:
        return await self._page(*_searched(search), scope, page)

    async def count_visible(self, scope: Scope, search: str = "") -> int:
        where, params = _searched(search)
        in_scope, scope_params = scope_filter(scope, "c.path")
        row = await self._db.fetch_one(
            f"SELECT COUNT(*) AS n FROM cabinets c WHERE {where} AND {in_scope}",
            {**params, **scope_params})
        return int(row["n"]) if row else 0

    async def children(self, parent_id: str, scope: Scope, page: PageRequest) -> list[Cabinet]:
        return await self._page("c.parent_id = :parent_id", {"parent_id": parent_id}, scope, page)

    async def update(self, cabinet: Cabinet) -> None:
        await self._db.execute(
            "UPDATE cabinets SET name = :name, kind = :kind, external_id = :external_id,"
            " contact_email = :contact_email, updated_at = :updated_at WHERE id = :id",
            {"id": cabinet.id, "name": cabinet.name, "kind": cabinet.kind.value,
             "external_id": cabinet.external_id, "contact_email": cabinet.contact_email,
             "updated_at": cabinet.updated_at},
        )

    async def move(self, cabinet: Cabinet, new_parent: Cabinet | None, at: datetime) -> Cabinet:
        old_path = cabinet.path
        new_path = f"{new_parent.path if new_parent else '/'}{cabinet.id}/"
        await self._db.execute(
            "UPDATE cabinets SET path = :new_path || substr(path, :cut)"
            " WHERE path LIKE :old_prefix",
            {"new_path": new_path, "cut": len(old_path) + 1, "old_prefix": old_path + "%"},
        )
        await self._db.execute(
            "UPDATE cabinets SET parent_id = :parent_id, updated_at = :at WHERE id = :id",
            {"parent_id": new_parent.id if new_parent else None, "at": at, "id": cabinet.id},
        )
        cabinet.path, cabinet.parent_id, cabinet.updated_at = (
            new_path, new_parent.id if new_parent else None, at)
        return cabinet
