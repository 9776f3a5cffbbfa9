"""Printable documents on fakes: rendered once per version, and license files only for
licenses that are not revoked."""

from __future__ import annotations

import json

import pytest

from app.domain.errors import Invalid, NotFound
from app.domain.licensing import DocumentKind
from app.domain.roles import Role
from tests.unit.core import Core


async def test_a_pdf_is_rendered_once_per_version_and_not_sent_to_who_has_it() -> None:
    core = Core()
    tree = await core.tree()
    license_ = await core.document(DocumentKind.LICENSE, tree.own, tree.product)
    user = tree.actors[Role.CUSTOMER_USER]
    first = await core.documents.pdf(user, DocumentKind.LICENSE, license_.id)
    again = await core.documents.pdf(user, DocumentKind.LICENSE, license_.id)
    assert first == again and core.renderer.renderings == 1
    assert first.filename == f"{license_.number}.pdf" and first.content
    assert b"pdf/dbguard/license.html" in first.content  # the product's own template first
    unchanged = await core.documents.pdf(user, DocumentKind.LICENSE, license_.id,
                                         known_etag=first.etag)
    assert unchanged.content is None and unchanged.etag == first.etag
    core.storage.state.licenses[license_.id].seats = 99  # another version of it
    changed = await core.documents.pdf(user, DocumentKind.LICENSE, license_.id,
                                       known_etag=first.etag)
    assert changed.etag != first.etag and changed.content and core.renderer.renderings == 2
    with pytest.raises(NotFound):
        await core.documents.pdf(tree.actors[Role.CUSTOMER_USER], DocumentKind.LICENSE,
                                 (await core.document(DocumentKind.LICENSE, tree.sibling,
                                                      tree.product)).id)


async def test_a_license_file_carries_the_license_and_a_revoked_one_has_none() -> None:
    core = Core()
    tree = await core.tree()
    license_ = await core.document(DocumentKind.LICENSE, tree.own, tree.product)
    found = await core.documents.license_file(tree.actors[Role.CUSTOMER_USER], license_.id)
    claims = json.loads(found.token.removeprefix("signed."))
    assert found.filename == f"{license_.number}.lic" and found.view.document.id == license_.id
    assert (claims["number"], claims["product"], claims["seats"], claims["owner"]["id"]) == (
        license_.number, "dbguard", 10, tree.own.id)
    core.storage.state.licenses[license_.id].revoked_at = core.clock.now()
    with pytest.raises(Invalid):
        await core.documents.license_file(tree.actors[Role.CUSTOMER_USER], license_.id)
