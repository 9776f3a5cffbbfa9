"""Releases and downloads on fakes: a scan registers each version once, entitlement locks
what a license may not have, and each download is answered from a plan."""

from __future__ import annotations

import io
import zipfile
from datetime import date, timedelta

import pytest

from app.domain.errors import BadRequest, Forbidden, NotFound
from app.domain.events import ReleasePublished
from app.domain.licensing import DocumentKind
from app.domain.paging import PageRequest
from app.domain.releases import ReleaseKind
from app.domain.roles import Role
from app.domain.users import SYSTEM
from app.services.archives import read_pieces
from app.services.downloads import Download
from tests.fakes import FakeObjectStore
from tests.unit.core import Core

MANIFEST = b"""
kind: fix
title: The fix
published_at: 2026-06-01T00:00:00Z
files:
  notes.txt: {kind: doc}
"""


async def body(core: Core, download: Download) -> bytes:
    return b"".join([chunk async for chunk in read_pieces(core.objects,
                                                         download.pieces(0, download.size))])


async def test_a_scan_registers_each_version_once_and_tells_the_licensees() -> None:
    core = Core()
    tree = await core.tree()
    await core.document(DocumentKind.LICENSE, tree.own, tree.product)
    await core.put("releases", "dbguard/2.0/image.iso", b"image")
    await core.put("releases", "dbguard/2.0/release.yaml", MANIFEST)
    await core.put("releases", "dbguard/2.0/notes.txt", b"notes")
    with pytest.raises(Forbidden):
        await core.releases.scan(tree.actors[Role.STAFF], tree.product.id)

    [release] = await core.releases.scan(tree.actors[Role.STAFF_ADMIN], tree.product.id)
    assert (release.kind, release.title) == (ReleaseKind.FIX, "The fix")
    assert {a.name: a.kind.value for a in release.artifacts} == {"image.iso": "image",
                                                                 "notes.txt": "doc"}
    assert all(a.sha256 and a.crc32 is not None for a in release.artifacts)
    assert await core.releases.scan(tree.actors[Role.STAFF_ADMIN], tree.product.id) == []
    assert await core.releases.scan_all(SYSTEM) == []
    [published] = [e for e in core.bus.published if isinstance(e, ReleasePublished)]
    assert published.version == "2.0" and published.published_on == date(2026, 6, 1)
    assert core.told(tree.users[Role.CUSTOMER_USER]) == ["The fix is out"]
    assert core.told(tree.users[Role.STAFF]) == []  # no license of their own


async def test_customers_see_the_releases_of_what_they_hold_and_staff_withdraw_them() -> None:
    core = Core()
    tree = await core.tree()
    await core.put("releases", "dbguard/1.0/a.bin", b"a")
    [release] = await core.releases.scan(SYSTEM, tree.product.id)
    user = tree.actors[Role.CUSTOMER_USER]
    with pytest.raises(NotFound):
        await core.releases.list_for_product(user, tree.product.id, PageRequest())
    await core.document(DocumentKind.LICENSE, tree.own, tree.product)
    listed = await core.releases.list_for_product(user, tree.product.id, PageRequest())
    assert [r.id for r in listed.items] == [release.id]
    with pytest.raises(Forbidden):
        await core.releases.set_yanked(user, tree.product.id, release.id, True)
    yanked = await core.releases.set_yanked(tree.actors[Role.STAFF_ADMIN], tree.product.id,
                                            release.id, True)
    assert yanked.yanked_at == core.clock.now()
    [view] = (await core.downloads.for_license(
        user, next(iter(core.storage.state.licenses)))).releases
    assert not view.entitlement.available
    assert view.entitlement.reason == "This release was withdrawn."


async def test_a_fix_after_support_ended_is_locked_and_a_security_fix_never_is() -> None:
    core = Core()
    tree = await core.tree()
    today = core.clock.now().date()
    license_ = await core.document(DocumentKind.LICENSE, tree.own, tree.product,
                                   valid_to=None)
    await core.document(DocumentKind.CERTIFICATE, tree.own, tree.product,
                        valid_to=today - timedelta(days=30))
    await core.put("releases", "dbguard/1.1/fix.bin", b"fix")
    await core.put("releases", "dbguard/1.1/release.yaml", b"kind: fix")
    await core.put("releases", "dbguard/1.2/sec.bin", b"sec")
    await core.put("releases", "dbguard/1.2/release.yaml", b"kind: security")
    fix, security = await core.releases.scan(SYSTEM, tree.product.id)
    user = tree.actors[Role.CUSTOMER_USER]
    with pytest.raises(Forbidden) as locked:
        await core.downloads.file(user, license_.id, fix.artifacts[0].id)
    assert "support ended" in locked.value.detail
    download = await core.downloads.file(user, license_.id, security.artifacts[0].id)
    assert download.redirect is None and await body(core, download) == b"sec"
    with pytest.raises(NotFound):  # a license of another cabinet is not there at all
        await core.downloads.file(tree.actors[Role.CUSTOMER_USER],
                                  (await core.document(DocumentKind.LICENSE, tree.foreign,
                                                       tree.product)).id,
                                  security.artifacts[0].id)


async def test_an_archive_is_laid_out_before_its_first_byte_and_counted_once() -> None:
    core = Core()
    tree = await core.tree()
    license_ = await core.document(DocumentKind.LICENSE, tree.own, tree.product)
    await core.put("releases", "dbguard/3.0/a.bin", b"a" * 1000)
    await core.put("releases", "dbguard/3.0/b.bin", b"b" * 10)
    [release] = await core.releases.scan(SYSTEM, tree.product.id)
    admin = tree.actors[Role.CUSTOMER_ADMIN]
    with pytest.raises(BadRequest):
        await core.downloads.archive(admin, license_.id, [], None)
    download = await core.downloads.archive(admin, license_.id, [], release.id)
    data = await body(core, download)
    assert len(data) == download.size and download.filename == f"{license_.number}-files.zip"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["dbguard-3.0/a.bin", "dbguard-3.0/b.bin", "SHA256SUMS"]
        assert archive.read("dbguard-3.0/a.bin") == b"a" * 1000
        assert archive.testzip() is None
    assert (await core.downloads.archive(admin, license_.id, [], release.id)).etag == \
        download.etag
    assert (await core.downloads.history(admin, PageRequest())).items == []
    await download.record()
    history = await core.downloads.history(admin, PageRequest())
    assert sorted(e.details["file"] for e in history.items) == ["a.bin", "b.bin"]
    with pytest.raises(Forbidden):
        await core.downloads.history(tree.actors[Role.CUSTOMER_USER], PageRequest())


async def test_a_store_with_links_redirects_and_counts_the_download_at_once() -> None:
    core = Core(objects=FakeObjectStore(links=True))
    tree = await core.tree()
    license_ = await core.document(DocumentKind.LICENSE, tree.own, tree.product)
    await core.put("releases", "dbguard/4.0/a.bin", b"a")
    [release] = await core.releases.scan(SYSTEM, tree.product.id)
    download = await core.downloads.file(tree.actors[Role.CUSTOMER_USER], license_.id,
                                         release.artifacts[0].id)
    assert download.redirect == "https://objects.test/releases/dbguard/4.0/a.bin?ttl=60"
    [entry] = (await core.downloads.history(tree.actors[Role.STAFF], PageRequest())).items
    assert entry.details["license"] == license_.number and entry.details["archive"] is False
