"""The product catalogue: staff administrators add and change products; everyone reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.domain import access
from app.domain.cabinets import check_name
from app.domain.errors import Checks, Conflict, NotFound
from app.domain.paging import Page, PageRequest
from app.domain.products import (
    Product,
    check_bucket,
    check_code,
    check_description,
    check_prefix,
    parse_parameters,
)
from app.domain.users import Principal
from app.services.work import UseCases
from ports.storage import DuplicateKey, UnitOfWork

# Where a new product's releases usually go: the bucket the demo and the tests use.
DEFAULT_BUCKET = "releases"


@dataclass(frozen=True)
class ProductDraft:
    code: str
    name: str
    bucket: str
    prefix: str | None = None
    description: str = ""
    active: bool = True
    parameters: dict[str, Any] = field(default_factory=dict)
    # The parameters as a form's text: parsed, and a broken one said with the other fields.
    parameters_text: str | None = None


@dataclass(frozen=True)
class ProductChanges:
    """None leaves a field as it is."""

    name: str | None = None
    description: str | None = None
    bucket: str | None = None
    prefix: str | None = None
    active: bool | None = None
    parameters: dict[str, Any] | None = None
    parameters_text: str | None = None


class CatalogService(UseCases):

    async def list_visible(self, actor: Principal, page: PageRequest) -> Page[Product]:
        async with self._work(read_only=True) as uow:
            rows = await uow.products.list_page(
                page, include_inactive=access.sees_inactive_products(actor))
        return Page.from_rows(rows, page)

    async def get(self, actor: Principal, product_id: str) -> Product:
        async with self._work(read_only=True) as uow:
            return await self._visible(uow, actor, product_id)

    async def get_by_code(self, actor: Principal, code: str) -> Product:
        async with self._work(read_only=True) as uow:
            found = await uow.products.get_by_code(code)
            return await self._visible(uow, actor, found.id if found else "")

    def blank(self, actor: Principal) -> ProductDraft:
        """What the form for a new product starts from; Forbidden for whoever may not add
        one."""
        access.require_may_manage_products(actor)
        return ProductDraft(code="", name="", bucket=DEFAULT_BUCKET)

    async def create(self, actor: Principal, draft: ProductDraft) -> Product:
        access.require_may_manage_products(actor)
        now = self._clock.now()
        checks = Checks()  # every field the form got wrong, said at once
        code = checks(check_code, draft.code)
        parameters = draft.parameters if draft.parameters_text is None else checks(
            parse_parameters, draft.parameters_text)
        product = Product(
            id=self._ids.new_id(), code=code, name=checks(check_name, draft.name),
            description=checks(check_description, draft.description),
            bucket=checks(check_bucket, draft.bucket),
            prefix=checks(check_prefix, code if draft.prefix is None else draft.prefix),
            active=draft.active, parameters=parameters, created_at=now, updated_at=now)
        checks.done()
        async with self._work() as uow:
            try:
                await uow.products.add(product)
            except DuplicateKey:
                raise Conflict(f"A product with the code {code} exists already.",
                               field="code") from None
            await uow.audit.add(self._audit.entry(
                "product.created", actor, "product", product.id, None, code=code))
            await uow.commit()
        return product

    async def update(self, actor: Principal, product_id: str,
                     changes: ProductChanges) -> Product:
        access.require_may_manage_products(actor)
        async with self._work() as uow:
            product = await self._visible(uow, actor, product_id)
            before = vars(product).copy()
            checks = Checks()
            if changes.name is not None:
                product.name = checks(check_name, changes.name)
            if changes.description is not None:
                product.description = checks(check_description, changes.description)
            if changes.bucket is not None:
                product.bucket = checks(check_bucket, changes.bucket)
            if changes.prefix is not None:
                product.prefix = checks(check_prefix, changes.prefix)
            parameters = changes.parameters if changes.parameters_text is None else checks(
                parse_parameters, changes.parameters_text)
            checks.done()
            if changes.active is not None:
                product.active = changes.active
            if parameters is not None:
                product.parameters = parameters
            product.updated_at = self._clock.now()
            await uow.products.update(product)
            changed = sorted(k for k, v in vars(product).items()
                             if before[k] != v and k != "updated_at")
            await uow.audit.add(self._audit.entry(
                "product.updated", actor, "product", product.id, None, fields=changed))
            await uow.commit()
        return product

    @staticmethod
    async def _visible(uow: UnitOfWork, actor: Principal, product_id: str) -> Product:
        product = await uow.products.get(product_id)
        if product is None or not (product.active or access.sees_inactive_products(actor)):
            raise NotFound("No such product.")
        return product
