"""The catalogue and licensing use cases on fakes: who may do what, and what it tells."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.domain.errors import Conflict, Forbidden, Invalid, NotFound
from app.domain.events import DocumentTransferred, MailQueued, NotificationsCreated
from app.domain.licensing import DocumentKind, DocumentStatus
from app.domain.paging import PageRequest
from app.domain.roles import Role
from app.domain.users import SYSTEM
from app.services.catalog import ProductChanges, ProductDraft
from app.services.licensing import DocumentQuery
from tests.unit.core import Core


async def test_only_staff_admins_add_and_change_products_and_codes_are_unique() -> None:
    core = Core()
    tree = await core.tree()
    draft = ProductDraft(code="vault", name="Vault", bucket="releases")
    for role in (Role.CUSTOMER_USER, Role.CUSTOMER_ADMIN, Role.STAFF):
        with pytest.raises(Forbidden):
            await core.catalog.create(tree.actors[role], draft)
        with pytest.raises(Forbidden):
            core.catalog.blank(tree.actors[role])
    product = await core.catalog.create(tree.actors[Role.STAFF_ADMIN], draft)
    assert product.prefix == "vault/"  # the code, when no prefix is given
    with pytest.raises(Conflict):
        await core.catalog.create(tree.actors[Role.STAFF_ADMIN], draft)
    with pytest.raises(Invalid):
        await core.catalog.update(tree.actors[Role.STAFF_ADMIN], product.id,
                                  ProductChanges(prefix="../secrets"))
    [entry] = [e for e in core.storage.state.audit if e.action == "product.created"
               and e.object_id == product.id]
    assert entry.actor_id == tree.users[Role.STAFF_ADMIN].id


async def test_a_withdrawn_product_is_gone_for_customers_but_not_for_staff() -> None:
    core = Core()
    tree = await core.tree()
    await core.catalog.update(SYSTEM, tree.product.id, ProductChanges(active=False))
    with pytest.raises(NotFound):
        await core.catalog.get(tree.actors[Role.CUSTOMER_ADMIN], tree.product.id)
    assert (await core.catalog.get(tree.actors[Role.STAFF], tree.product.id)).active is False
    listed = await core.catalog.list_visible(tree.actors[Role.CUSTOMER_USER], PageRequest())
    assert tree.product.id not in [p.id for p in listed.items]


async def test_lists_are_scoped_to_the_subtree_and_filtered() -> None:
    core = Core()
    tree = await core.tree()
    mine = await core.document(DocumentKind.LICENSE, tree.own, tree.product)
    below = await core.document(DocumentKind.LICENSE, tree.child, tree.product,
                                valid_to=core.clock.now().date() - timedelta(days=1))
    await core.document(DocumentKind.LICENSE, tree.sibling, tree.product)
    await core.document(DocumentKind.LICENSE, tree.foreign, tree.product)
    user = tree.actors[Role.CUSTOMER_USER]

    async def numbers(query: DocumentQuery) -> list[str]:
        page = await core.licensing.list_visible(user, DocumentKind.LICENSE, query,
                                                 PageRequest())
        return [view.document.number for view in page.items]

    assert await numbers(DocumentQuery()) == [mine.number, below.number]
    assert await numbers(DocumentQuery(status=DocumentStatus.EXPIRED)) == [below.number]
    assert await numbers(DocumentQuery(cabinet_id=tree.child.id)) == [below.number]
    assert await numbers(DocumentQuery(product="dbguard")) == [mine.number, below.number]
    with pytest.raises(NotFound):
        await numbers(DocumentQuery(cabinet_id=tree.sibling.id))
    staff = await core.licensing.list_visible(tree.actors[Role.STAFF], DocumentKind.LICENSE,
                                              DocumentQuery(), PageRequest())
    assert len(staff.items) == 4


async def test_a_transfer_moves_the_document_down_and_tells_both_cabinets() -> None:
    core = Core()
    tree = await core.tree()
    license_ = await core.document(DocumentKind.LICENSE, tree.own, tree.product)
    admin = tree.actors[Role.CUSTOMER_ADMIN]
    assert [c.id for c in await core.licensing.transfer_targets(
        admin, DocumentKind.LICENSE, license_.id)] == [tree.child.id]
    assert await core.licensing.transfer_targets(
        tree.actors[Role.CUSTOMER_USER], DocumentKind.LICENSE, license_.id) == []
    with pytest.raises(Forbidden):
        await core.licensing.transfer(tree.actors[Role.CUSTOMER_USER], DocumentKind.LICENSE,
                                      license_.id, tree.child.id)
    with pytest.raises(NotFound):
        await core.licensing.transfer(admin, DocumentKind.LICENSE, license_.id,
                                      tree.sibling.id)

    view = await core.licensing.transfer(admin, DocumentKind.LICENSE, license_.id,
                                         tree.child.id)
    assert view.cabinet.id == tree.child.id
    assert [(t.from_cabinet_id, t.to_cabinet_id) for t in view.transfers] == [
        (tree.own.id, tree.child.id)]
    moved, mailed, created = core.bus.published  # the change, then what it caused
    assert isinstance(moved, DocumentTransferred) and moved.to_name == "Acme Labs"
    assert mailed == MailQueued(count=2)
    assert isinstance(created, NotificationsCreated)
    # The users of the giving cabinet hear of it; those of the receiving have none here.
    assert set(created.batch.users) == {tree.users[Role.CUSTOMER_USER].id,
                                        tree.users[Role.CUSTOMER_ADMIN].id}
    assert core.told(tree.users[Role.CUSTOMER_USER]) == [f"{license_.number} moved to Acme Labs"]


async def test_a_revoked_document_does_not_move_and_is_not_valid_for_the_public() -> None:
    core = Core()
    tree = await core.tree()
    license_ = await core.document(DocumentKind.LICENSE, tree.own, tree.product)
    assert await core.licensing.verify(license_.number) == (DocumentKind.LICENSE, True)
    core.storage.state.licenses[license_.id].revoked_at = core.clock.now()
    assert await core.licensing.verify(license_.number) == (DocumentKind.LICENSE, False)
    assert await core.licensing.verify("LIC-2026-999999") is None
    assert await core.licensing.transfer_targets(
        tree.actors[Role.CUSTOMER_ADMIN], DocumentKind.LICENSE, license_.id) == []
    with pytest.raises(Invalid):
        await core.licensing.transfer(tree.actors[Role.CUSTOMER_ADMIN], DocumentKind.LICENSE,
                                      license_.id, tree.child.id)
    assert core.bus.published == []


async def test_a_document_not_yet_valid_is_pending_and_says_how_long_it_lasts() -> None:
    core = Core()
    tree = await core.tree()
    today = core.clock.now().date()
    soon = await core.document(DocumentKind.CERTIFICATE, tree.own, tree.product,
                               valid_from=today + timedelta(days=3),
                               valid_to=date(today.year + 1, 1, 1))
    view = await core.licensing.get(tree.actors[Role.CUSTOMER_USER], DocumentKind.CERTIFICATE,
                                    soon.id)
    assert view.status is DocumentStatus.PENDING
    assert view.days_left == (date(today.year + 1, 1, 1) - today).days
    with pytest.raises(NotFound):  # a certificate is no license
        await core.licensing.get(tree.actors[Role.CUSTOMER_USER], DocumentKind.LICENSE, soon.id)
