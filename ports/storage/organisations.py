"""Cabinets: the tree of organisations, read under the access rule's scope."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from app.domain.access import Scope
from app.domain.cabinets import Cabinet
from app.domain.paging import PageRequest


class CabinetRepository(Protocol):
    async def add(self, cabinet: Cabinet) -> None:
        """Insert; DuplicateKey("cabinets.external_id") when the billing id is taken."""

    async def get(self, cabinet_id: str, scope: Scope, *,
                  for_update: bool = False) -> Cabinet | None:
        """With `for_update`, the row stays locked against other writers until the unit of
        work ends (moves and new children of one cabinet then happen one after another)."""

    async def get_by_external_id(self, external_id: str, scope: Scope) -> Cabinet | None: ...

    async def get_many(self, cabinet_ids: list[str], scope: Scope) -> list[Cabinet]:
        """The cabinets among `cabinet_ids` in scope, in id order."""

    async def list_visible(self, scope: Scope, page: PageRequest,
                           search: str = "") -> list[Cabinet]:
        """Up to page.limit + 1 cabinets in scope after page.after, in id (creation) order,
        or a numbered page in the order of one of `CABINET_SORTS`; `search`: a part of the
        name or of the billing id."""

    async def count_visible(self, scope: Scope, search: str = "") -> int:
        """How many `list_visible` pages through."""

    async def children(self, parent_id: str, scope: Scope, page: PageRequest) -> list[Cabinet]:
        """Direct children, paged like `list_visible`."""

    async def update(self, cabinet: Cabinet) -> None:
        """Write name, kind, external_id, contact_email and updated_at."""

    async def move(self, cabinet: Cabinet, new_parent: Cabinet | None, at: datetime) -> Cabinet:
        """Re-parent `cabinet` and rewrite the paths of its whole subtree; returns it moved."""
