"""The vendor's catalogue: products and their releases. It is no tenant's: no Scope."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from app.domain.paging import PageRequest
from app.domain.products import Product
from app.domain.releases import Artifact, Release


class ProductRepository(Protocol):
    """The catalogue is the vendor's, not a tenant's: it takes no Scope."""

    async def add(self, product: Product) -> None:
        """Insert; DuplicateKey("products.code") when the code is taken."""

    async def get(self, product_id: str) -> Product | None: ...

    async def get_by_code(self, code: str) -> Product | None: ...

    async def get_many(self, product_ids: list[str]) -> list[Product]: ...

    async def list_page(self, page: PageRequest, *, include_inactive: bool) -> list[Product]:
        """Up to page.limit + 1 products after page.after, in id (creation) order."""

    async def update(self, product: Product) -> None:
        """Write every field but the code and the creation time."""


class ReleaseRepository(Protocol):
    """Releases with their artifacts. The catalogue is the vendor's: no Scope here; who may
    download what is the entitlement rule's question."""

    async def add(self, release: Release) -> bool:
        """Insert the release and its artifacts; False (and nothing written) when the
        product has this version already, also when another writer adds it concurrently."""

    async def get(self, release_id: str) -> Release | None: ...

    async def versions(self, product_id: str) -> set[str]: ...

    async def list_for_product(self, product_id: str, page: PageRequest,
                               include_yanked: bool = True) -> list[Release]:
        """Newest published first (ties by id), paged by the last id seen."""

    async def get_artifact(self, artifact_id: str) -> tuple[Release, Artifact] | None: ...

    async def set_yanked(self, release_id: str, at: datetime | None) -> None: ...
