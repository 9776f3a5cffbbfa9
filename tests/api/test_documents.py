"""Licenses and certificates as PDF, their cache, and the public verification page."""

from __future__ import annotations

import io
import re

import pypdf

from adapters.weasyprint import WeasyPrintRenderer
from app.domain.access import Scope
from app.domain.licensing import DocumentKind
from app.domain.roles import Role
from app.web.keys import SERVICES
from tests.world import World


def text_of(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return " ".join(page.extract_text() for page in reader.pages)


async def test_a_license_pdf_shows_number_product_owner_and_a_verify_link(world: World) -> None:
    license_ = await world.add_document(DocumentKind.LICENSE, world.own)
    response = await world.client.get(f"/api/v1/licenses/{license_.id}",
                                      params={"format": "pdf"},
                                      headers=world.actors[Role.CUSTOMER_USER].headers)
    assert response.status == 200
    assert response.content_type == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="{license_.number}.pdf"')
    body = await response.read()
    assert body.startswith(b"%PDF")
    text = text_of(body)
    for expected in (license_.number, "DB Guard", world.own.name, "Enterprise", "50",
                     "Software License", f"/verify/{license_.number}"):
        assert expected in text, expected


async def test_a_certificate_pdf_by_accept_header_names_its_license(world: World) -> None:
    license_ = await world.add_document(DocumentKind.LICENSE, world.own)
    certificate = await world.add_document(DocumentKind.CERTIFICATE, world.child)
    storage = world.client.app[SERVICES].storage
    async with storage.unit_of_work() as uow:
        stored = await uow.certificates.get(certificate.id, Scope.everything())
        assert stored is not None
        stored.license_id = license_.id
        await uow.certificates.update(stored)
        await uow.commit()
    response = await world.client.get(
        f"/api/v1/certificates/{certificate.id}",
        headers={**world.actors[Role.CUSTOMER_ADMIN].headers, "Accept": "application/pdf"})
    assert response.content_type == "application/pdf"
    text = text_of(await response.read())
    assert "Technical Support Certificate" in text and certificate.number in text
    assert "Premium" in text and license_.number in text and world.child.name in text


async def test_an_unchanged_pdf_comes_from_the_cache_and_answers_304(world: World) -> None:
    license_ = await world.add_document(DocumentKind.LICENSE, world.own)
    headers = world.actors[Role.CUSTOMER_USER].headers
    path = f"/api/v1/licenses/{license_.id}?format=pdf"
    renderer = world.client.app[SERVICES].documents._renderer
    calls = 0
    original = renderer.render_pdf

    async def counting(templates, context, **limits):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return await original(templates, context, **limits)

    renderer.render_pdf = counting  # type: ignore[method-assign]
    first = await world.client.get(path, headers=headers)
    second = await world.client.get(path, headers=headers)
    assert await first.read() == await second.read()
    assert calls == 1
    etag = first.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag) and second.headers["ETag"] == etag
    unchanged = await world.client.get(path, headers={**headers, "If-None-Match": etag})
    assert unchanged.status == 304 and await unchanged.read() == b""
    # A transfer changes what the document shows: a new version, rendered anew.
    await world.client.post(f"/api/v1/licenses/{license_.id}/transfer",
                            headers=world.actors[Role.CUSTOMER_ADMIN].headers,
                            json={"cabinet_id": world.child.id})
    moved = await world.client.get(path, headers={**headers, "If-None-Match": etag})
    assert moved.status == 200 and moved.headers["ETag"] != etag and calls == 2
    assert world.child.name in text_of(await moved.read())


async def test_foreign_documents_are_404_in_every_format(world: World) -> None:
    foreign = await world.add_document(DocumentKind.LICENSE, world.foreign)
    for params in ({}, {"format": "pdf"}, {"format": "lic"}):
        response = await world.client.get(f"/api/v1/licenses/{foreign.id}", params=params,
                                          headers=world.actors[Role.CUSTOMER_ADMIN].headers)
        assert response.status == 404
    unknown = await world.client.get(f"/api/v1/licenses/{foreign.id}", params={"format": "doc"},
                                     headers=world.actors[Role.STAFF].headers)
    assert unknown.status == 400


async def test_the_public_page_says_valid_or_not_and_nothing_more(world: World) -> None:
    valid = await world.add_document(DocumentKind.LICENSE, world.own)
    revoked = await world.add_document(DocumentKind.CERTIFICATE, world.own, revoked=True)
    page = await world.client.get(f"/verify/{valid.number}")
    html = await page.text()
    assert page.status == 200 and "This license is valid today." in html
    assert world.own.name not in html and "Enterprise" not in html
    for number in (revoked.number, "LIC-2026-000000", "not-a-number"):
        html = await (await world.client.get(f"/verify/{number}")).text()
        assert "No valid document has this number today." in html, number


async def test_a_license_file_verifies_with_the_public_key_and_a_changed_byte_fails(
        world: World) -> None:
    from adapters.jwcrypto import InvalidLicenseFile, verify_license_file

    license_ = await world.add_document(DocumentKind.LICENSE, world.own)
    response = await world.client.get(f"/api/v1/licenses/{license_.id}",
                                      params={"format": "lic"},
                                      headers=world.actors[Role.CUSTOMER_USER].headers)
    assert response.status == 200 and response.content_type == "application/jose"
    assert response.headers["Content-Disposition"].endswith(f'"{license_.number}.lic"')
    token = await response.text()
    keys = await (await world.client.get("/.well-known/license-keys.json")).json()
    claims = verify_license_file(token, keys)
    assert claims["number"] == license_.number and claims["seats"] == 50
    assert claims["product"] == world.product.code and claims["edition"] == "Enterprise"
    assert claims["owner"]["name"] == world.own.name and claims["valid_to"] == "2099-12-31"
    # The license key is not the token key.
    token_keys = await (await world.client.get("/.well-known/jwks.json")).json()
    assert {k["kid"] for k in keys["keys"]}.isdisjoint(k["kid"] for k in token_keys["keys"])
    head, payload, signature = token.split(".")
    for forged in (f"{head}.{payload[:-1]}{'A' if payload[-1] != 'A' else 'B'}.{signature}",
                   f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"):
        try:
            verify_license_file(forged, keys)
        except InvalidLicenseFile:
            continue
        raise AssertionError("a changed byte still verified")


async def test_no_license_file_for_revoked_licenses_or_certificates(world: World) -> None:
    revoked = await world.add_document(DocumentKind.LICENSE, world.own, revoked=True)
    certificate = await world.add_document(DocumentKind.CERTIFICATE, world.own)
    headers = world.actors[Role.CUSTOMER_USER].headers
    refused = await world.client.get(f"/api/v1/licenses/{revoked.id}", params={"format": "lic"},
                                     headers=headers)
    assert refused.status == 422
    not_a_format = await world.client.get(f"/api/v1/certificates/{certificate.id}",
                                          params={"format": "lic"}, headers=headers)
    assert not_a_format.status == 400


async def test_a_broken_renderer_answers_503_and_the_rest_goes_on(world: World) -> None:
    from ports.documents import RenderingFailed

    license_ = await world.add_document(DocumentKind.LICENSE, world.own)
    renderer = world.client.app[SERVICES].documents._renderer

    async def broken(templates, context, **limits):  # type: ignore[no-untyped-def]
        raise RenderingFailed("workers died")

    renderer.render_pdf = broken  # type: ignore[method-assign]
    headers = world.actors[Role.CUSTOMER_USER].headers
    response = await world.client.get(f"/api/v1/licenses/{license_.id}?format=pdf",
                                      headers=headers)
    assert response.status == 503
    assert (await response.json())["type"] == "/problems/service-unavailable"
    assert (await world.client.get(f"/api/v1/licenses/{license_.id}",
                                   headers=headers)).status == 200


async def test_a_changed_base_template_makes_a_new_version(world: World) -> None:
    """Templates extend a shared base: editing it must not leave old PDFs in the cache."""
    from pathlib import Path

    license_ = await world.add_document(DocumentKind.LICENSE, world.own)
    headers = world.actors[Role.CUSTOMER_USER].headers
    path = f"/api/v1/licenses/{license_.id}?format=pdf"
    before = (await world.client.get(path, headers=headers)).headers["ETag"]
    renderer = world.client.app[SERVICES].documents._renderer
    assert isinstance(renderer, WeasyPrintRenderer)
    base = Path(renderer._dir) / "pdf/default/base.html"
    original = base.read_text()
    try:
        base.write_text(original + "\n<!-- changed -->\n")
        after = await world.client.get(path, headers={**headers, "If-None-Match": before})
        assert after.status == 200 and after.headers["ETag"] != before
        assert after.headers["Vary"] == "Accept"
    finally:
        base.write_text(original)


async def test_a_future_license_is_pending_not_valid(world: World) -> None:
    from datetime import date, timedelta

    later = await world.add_document(DocumentKind.LICENSE, world.own,
                                     valid_from=date.today() + timedelta(days=10))
    shown = await (await world.client.get(f"/api/v1/licenses/{later.id}",
                                          headers=world.actors[Role.CUSTOMER_USER].headers)).json()
    assert shown["status"] == "pending"
    html = await (await world.client.get(f"/verify/{later.number}")).text()
    assert "No valid document has this number today." in html
