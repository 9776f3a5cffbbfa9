"""Organisations: create, read, change and list cabinets under the access rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.domain import access
from app.domain.cabinets import (
    CABINET_SORTS,
    Cabinet,
    CabinetKind,
    check_name,
    check_parent,
    path_under,
)
from app.domain.errors import Conflict, Forbidden, Invalid
from app.domain.paging import MAX_SEARCH, Page, PageRequest, check_sort
from app.domain.users import Principal
from app.services.audit import AuditTrail
from app.services.work import UseCases
from ports.storage import DuplicateKey, UnitOfWork


class Unset:
    """Marks a field a PATCH did not mention (None there means "clear it")."""


UNSET = Unset()


@dataclass(frozen=True)
class CabinetChanges:
    name: str | None = None
    external_id: str | Unset | None = UNSET
    parent_id: str | Unset | None = UNSET


async def add_cabinet(uow: UnitOfWork, audit: AuditTrail, actor: Principal, cabinet_id: str,
                      now: datetime, name: str, kind: CabinetKind, parent: Cabinet | None,
                      external_id: str | None, contact_email: str | None = None) -> Cabinet:
    """Insert a new cabinet below `parent` (already checked as the caller's to use) and
    audit it, inside the caller's unit of work."""
    check_parent(kind, parent)
    cabinet = Cabinet(id=cabinet_id, name=check_name(name), kind=kind,
                      parent_id=parent.id if parent else None,
                      path=path_under(parent, cabinet_id), external_id=external_id,
                      created_at=now, updated_at=now, contact_email=contact_email)
    try:
        await uow.cabinets.add(cabinet)
    except DuplicateKey:
        raise Conflict("Another cabinet has this billing id.", field="external_id") from None
    await uow.audit.add(audit.entry(
        "cabinet.created", actor, "cabinet", cabinet.id, cabinet.id,
        name=cabinet.name, kind=kind.value, parent_id=cabinet.parent_id))
    return cabinet


class CabinetService(UseCases):

    async def create(self, actor: Principal, name: str, kind: CabinetKind,
                     parent_id: str | None, external_id: str | None = None) -> Cabinet:
        name = check_name(name)
        async with self._work() as uow:
            parent = None
            if parent_id is None:
                access.require_may_create_root(actor)
            else:
                # Locked, so that a concurrent move of the parent cannot leave the new child
                # with the parent's old path (and in the wrong organisation's reach).
                parent = await self._visible(uow, actor, parent_id, lock=True)
                access.require_may_create_child(actor, parent)
            if external_id is not None and not access.may_restructure(actor):
                raise Forbidden("Only staff administrators set billing ids.", field="external_id")
            cabinet = await add_cabinet(uow, self._audit, actor, self._ids.new_id(),
                                        self._clock.now(), name, kind, parent, external_id)
            await uow.commit()
        return cabinet

    async def get(self, actor: Principal, cabinet_id: str) -> Cabinet:
        async with self._work(read_only=True) as uow:
            return await self._visible(uow, actor, cabinet_id)

    async def get_by_external_id(self, actor: Principal, external_id: str) -> Cabinet | None:
        async with self._work(read_only=True) as uow:
            return await uow.cabinets.get_by_external_id(external_id, access.visible_scope(actor))

    async def lineage(self, actor: Principal, cabinet: Cabinet) -> list[Cabinet]:
        """The ancestors of `cabinet` that `actor` may open, from the top down."""
        async with self._work(read_only=True) as uow:
            found = await uow.cabinets.get_many(cabinet.ancestor_ids, access.visible_scope(actor))
        return sorted(found, key=lambda c: len(c.path))

    async def update(self, actor: Principal, cabinet_id: str, changes: CabinetChanges) -> Cabinet:
        async with self._work() as uow:
            cabinet = await self._visible(uow, actor, cabinet_id, lock=True)
            access.require_may_edit_cabinet(actor, cabinet)
            restructures = [field for field in ("external_id", "parent_id")
                            if not isinstance(getattr(changes, field), Unset)]
            if restructures and not access.may_restructure(actor):
                raise Forbidden("Only staff administrators move cabinets or set billing ids.",
                                field=restructures[0])
            before = {"name": cabinet.name, "external_id": cabinet.external_id,
                      "parent_id": cabinet.parent_id}
            now = self._clock.now()
            if changes.name is not None:
                cabinet.name = check_name(changes.name)
            if not isinstance(changes.external_id, Unset):
                cabinet.external_id = changes.external_id
            cabinet.updated_at = now
            await self._update(uow, cabinet)
            if not isinstance(changes.parent_id, Unset) and changes.parent_id != cabinet.parent_id:
                cabinet = await self._move(uow, actor, cabinet, changes.parent_id)
            after = {"name": cabinet.name, "external_id": cabinet.external_id,
                     "parent_id": cabinet.parent_id}
            await uow.audit.add(self._audit.entry(
                "cabinet.updated", actor, "cabinet", cabinet.id, cabinet.id,
                changes={k: [before[k], after[k]] for k in after if before[k] != after[k]}))
            await uow.commit()
        return cabinet

    async def list_visible(self, actor: Principal, page: PageRequest,
                           search: str = "") -> Page[Cabinet]:
        """Those the caller sees; `search`: part of a name or billing id. A numbered page
        comes with the count."""
        search = search[:MAX_SEARCH]
        if page.sort is not None:
            check_sort(page.sort, CABINET_SORTS)
        async with self._work(read_only=True) as uow:
            scope = access.visible_scope(actor)
            rows = await uow.cabinets.list_visible(scope, page, search)
            if page.sort is None:
                return Page.from_rows(rows, page)
            return Page.numbered(rows, page, await uow.cabinets.count_visible(scope, search))

    async def children(self, actor: Principal, cabinet_id: str,
                       page: PageRequest) -> Page[Cabinet]:
        async with self._work(read_only=True) as uow:
            cabinet = await self._visible(uow, actor, cabinet_id)
            rows = await uow.cabinets.children(cabinet.id, access.visible_scope(actor), page)
        return Page.from_rows(rows, page)

    async def _visible(self, uow: UnitOfWork, actor: Principal, cabinet_id: str, *,
                       lock: bool = False) -> Cabinet:
        cabinet = await uow.cabinets.get(cabinet_id, access.visible_scope(actor), for_update=lock)
        return access.require_visible(actor, cabinet)

    async def _move(self, uow: UnitOfWork, actor: Principal, cabinet: Cabinet,
                    parent_id: str | None) -> Cabinet:
        parent = await self._visible(uow, actor, parent_id, lock=True) if parent_id else None
        if parent is not None and parent.is_within(cabinet):
            raise Invalid("A cabinet cannot move below itself.", field="parent_id")
        check_parent(cabinet.kind, parent)
        return await uow.cabinets.move(cabinet, parent, self._clock.now())

    @staticmethod
    async def _update(uow: UnitOfWork, cabinet: Cabinet) -> None:
        try:
            await uow.cabinets.update(cabinet)
        except DuplicateKey:
            raise Conflict("Another cabinet has this billing id.", field="external_id") from None
