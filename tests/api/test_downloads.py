"""Releases and downloads: scanning, entitlement per license, single files with ranges,
zip archives, the history, and S3's presigned redirects."""

from __future__ import annotations

import asyncio
import hashlib
import io
import zipfile
from collections.abc import AsyncIterator
from datetime import date

from aiohttp import ClientSession, web

from app.domain.licensing import DocumentKind
from app.domain.roles import Role
from app.services.archives import Span
from app.services.downloads import Download
from app.web.api.downloads import send
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.world import ClientFactory, SettingsFor, World, build_world

IMAGE = bytes(range(256)) * 400  # 102,400 bytes
MANIFEST = """
kind: security
title: Critical fix
notes: "Fixes **CVE-2026-0001**."
published_at: 2026-06-01T00:00:00Z
advisories:
  - {id: CVE-2026-0001, severity: critical, summary: Remote code execution}
files:
  patch.bin: {kind: update}
"""


async def images(world: World, license_id: str, role: Role = Role.CUSTOMER_USER) -> dict:  # type: ignore[type-arg]
    response = await world.client.get(f"/api/v1/licenses/{license_id}/images",
                                      headers=world.actors[role].headers)
    assert response.status == 200, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def test_scanning_registers_each_version_once(world: World) -> None:
    services = world.client.app[SERVICES]
    code, bucket = world.product.prefix, world.product.bucket

    async def put(key: str, data: bytes) -> None:
        async def once() -> AsyncIterator[bytes]:
            yield data
        await services.objects.put(bucket, code + key, once())

    await put("1.0/image.iso", IMAGE)
    await put("1.0/guide.pdf", b"%PDF-1.4 guide")
    await put("1.1/patch.bin", b"patch")
    await put("1.1/release.yaml", MANIFEST.encode())
    admin = world.actors[Role.STAFF_ADMIN].headers
    scans = await asyncio.gather(*(world.client.post(f"/api/v1/products/{world.product.id}/scan",
                                                     headers=admin) for _ in range(2)))
    found = [item for scan in scans for item in (await scan.json())["items"]]
    assert sorted(r["version"] for r in found) == ["1.0", "1.1"]  # each once, by one scan
    again = await (await world.client.post(f"/api/v1/products/{world.product.id}/scan",
                                           headers=admin)).json()
    assert again["items"] == []
    listed = await (await world.client.get(f"/api/v1/products/{world.product.id}/releases",
                                           headers=admin)).json()
    by_version = {r["version"]: r for r in listed["items"]}
    fix = by_version["1.1"]
    assert fix["kind"] == "security" and fix["title"] == "Critical fix"
    assert fix["advisories"][0]["id"] == "CVE-2026-0001"
    assert [f["name"] for f in fix["files"]] == ["patch.bin"]  # release.yaml is no file
    first = {f["name"]: f for f in by_version["1.0"]["files"]}
    assert first["image.iso"]["kind"] == "image" and first["guide.pdf"]["kind"] == "doc"
    assert first["image.iso"]["sha256"] == hashlib.sha256(IMAGE).hexdigest()
    # Newest published first: 1.0 is published now, 1.1 says June.
    assert [r["version"] for r in listed["items"]] == ["1.0", "1.1"]


async def test_a_license_lists_what_it_opens_and_what_stays_locked(world: World) -> None:
    license_ = await world.add_document(DocumentKind.LICENSE, world.own,
                                        valid_from=date(2026, 1, 1), valid_to=date(2099, 1, 1))
    await world.publish("2.0", {"image.iso": IMAGE})
    await world.publish("2.1", {"patch.bin": b"p"}, manifest="kind: update\n"
                                                             "published_at: 2026-06-01\n")
    await world.publish("2.2", {"sec.bin": b"s"}, manifest="kind: security\n"
                                                           "published_at: 2026-06-01\n")
    shown = await images(world, license_.id)
    by_version = {r["version"]: r for r in shown["releases"]}
    assert by_version["2.0"]["available"] is True
    image = by_version["2.0"]["files"][0]
    assert image["download_url"] == f"/api/v1/licenses/{license_.id}/images/{image['id']}"
    assert by_version["2.1"]["available"] is False
    assert "support certificate" in by_version["2.1"]["locked_reason"]
    assert by_version["2.1"]["files"][0]["download_url"] is None
    assert by_version["2.2"]["available"] is True  # security fixes are never locked
    locked = by_version["2.1"]["files"][0]["id"]
    response = await world.client.get(f"/api/v1/licenses/{license_.id}/images/{locked}",
                                      headers=world.actors[Role.CUSTOMER_USER].headers)
    assert response.status == 403
    # With a support certificate, the update opens.
    await world.add_document(DocumentKind.CERTIFICATE, world.own, valid_from=date(2026, 1, 1),
                             valid_to=date(2099, 1, 1))
    shown = await images(world, license_.id)
    assert {r["version"]: r["available"] for r in shown["releases"]}["2.1"] is True


async def test_a_file_downloads_whole_and_in_ranges(world: World) -> None:
    license_ = await world.add_document(DocumentKind.LICENSE, world.own)
    release = await world.publish("3.0", {"image.iso": IMAGE})
    url = f"/api/v1/licenses/{license_.id}/images/{release.artifacts[0].id}"
    headers = world.actors[Role.CUSTOMER_USER].headers
    whole = await world.client.get(url, headers=headers)
    assert whole.status == 200 and await whole.read() == IMAGE
    assert whole.headers["Content-Length"] == str(len(IMAGE))
    assert whole.headers["Content-Disposition"] == (
        "attachment; filename=\"image.iso\"; filename*=UTF-8''image.iso")
    assert whole.headers["Accept-Ranges"] == "bytes"
    etag = whole.headers["ETag"]
    cases = {"bytes=0-99": IMAGE[:100], "bytes=100-": IMAGE[100:], "bytes=-10": IMAGE[-10:],
             "bytes=102390-999999": IMAGE[102390:]}
    for asked, expected in cases.items():
        part = await world.client.get(url, headers={**headers, "Range": asked})
        assert part.status == 206, asked
        assert await part.read() == expected, asked
        assert part.headers["Content-Range"].endswith(f"/{len(IMAGE)}")
    outside = await world.client.get(url, headers={**headers, "Range": "bytes=200000-"})
    assert outside.status == 416 and outside.headers["Content-Range"] == f"bytes */{len(IMAGE)}"
    stale = await world.client.get(url, headers={**headers, "Range": "bytes=0-9",
                                                 "If-Range": '"not-the-etag"'})
    assert stale.status == 200 and len(await stale.read()) == len(IMAGE)
    fresh = await world.client.get(url, headers={**headers, "Range": "bytes=0-9",
                                                 "If-Range": etag})
    assert fresh.status == 206 and await fresh.read() == IMAGE[:10]
    # Invalid ranges are ignored (the whole file), as HTTP says; never a 500.
    for invalid in ("bytes=5-2", "bytes=-", "bytes=0-" + "9" * 5000, "bytes=\u0661-\u0662"):
        answer = await world.client.get(url, headers={**headers, "Range": invalid})
        assert answer.status == 200 and len(await answer.read()) == len(IMAGE), invalid


async def test_names_that_need_quoting_download_under_their_own_name(world: World) -> None:
    license_ = await world.add_document(DocumentKind.LICENSE, world.own)
    name = 'we"ird; nämé.bin'
    release = await world.publish("3.5", {name: b"odd"})
    response = await world.client.get(
        f"/api/v1/licenses/{license_.id}/images/{release.artifacts[0].id}",
        headers=world.actors[Role.CUSTOMER_USER].headers)
    assert response.status == 200 and await response.read() == b"odd"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="we_ird; n_m_.bin"; ')
    assert "filename*=UTF-8''we%22ird%3B%20n%C3%A4m%C3%A9.bin" in disposition


async def test_only_whole_downloads_are_counted_in_the_history(world: World) -> None:
    license_ = await world.add_document(DocumentKind.LICENSE, world.child)
    release = await world.publish("3.6", {"image.iso": IMAGE})
    url = f"/api/v1/licenses/{license_.id}/images/{release.artifacts[0].id}"
    user = world.actors[Role.CUSTOMER_ADMIN]
    for asked in ("bytes=0-99", "bytes=100-", "bytes=999999-", None):
        await world.client.get(url, headers={**user.headers, **({"Range": asked} if asked
                                                                else {})})
    history = await (await world.client.get("/api/v1/downloads", headers=user.headers)).json()
    assert len([e for e in history["items"] if e["version"] == "3.6"]) == 2  # 0-99 and whole


async def test_a_file_gone_from_the_store_is_a_clear_404_before_any_byte(world: World) -> None:
    license_ = await world.add_document(DocumentKind.LICENSE, world.own)
    release = await world.publish("3.7", {"a.bin": b"a" * 1000, "b.bin": b"b" * 1000})
    services = world.client.app[SERVICES]
    [a, b] = sorted(release.artifacts, key=lambda artifact: artifact.name)
    path = services.objects.local_path(world.product.bucket, b.key)
    assert path is not None
    path.write_bytes(b"short")
    await services.objects.delete(world.product.bucket, a.key)
    headers = world.actors[Role.CUSTOMER_USER].headers
    base = f"/api/v1/licenses/{license_.id}/images"
    for url in (f"{base}/{a.id}", f"{base}/{b.id}", f"{base}/archive?release={release.id}"):
        response = await world.client.get(url, headers=headers)
        assert response.status == 404 and response.content_type == "application/problem+json"
        assert "missing from the store" in (await response.json())["detail"], url


async def test_a_zip_of_several_files_opens_and_its_sums_match(world: World) -> None:
    license_ = await world.add_document(DocumentKind.LICENSE, world.own)
    release = await world.publish("4.0", {"image.iso": IMAGE, "guide.pdf": b"%PDF guide",
                                          "tools/cli.tar": b"tar" * 1000})
    headers = world.actors[Role.CUSTOMER_USER].headers
    base = f"/api/v1/licenses/{license_.id}/images/archive"
    response = await world.client.get(base, params={"release": release.id}, headers=headers)
    assert response.status == 200 and response.content_type == "application/zip"
    body = await response.read()
    assert int(response.headers["Content-Length"]) == len(body)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.testzip() is None
        sums = dict(line.split("  ")[::-1]
                    for line in archive.read("SHA256SUMS").decode().splitlines())
        names = [n for n in archive.namelist() if n != "SHA256SUMS"]
        assert sorted(names) == sorted(f"{world.product.code}-4.0/{n}"
                                       for n in ("image.iso", "guide.pdf", "tools/cli.tar"))
        for name in names:
            assert hashlib.sha256(archive.read(name)).hexdigest() == sums[name]
        # Dated by the release, not the request: a resumed download gets the same bytes.
        stamp = release.published_at
        assert archive.getinfo("SHA256SUMS").date_time == (
            stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second // 2 * 2)
    picked = [release.artifacts[0].id, release.artifacts[1].id]
    part = await world.client.get(base, params=[("file", i) for i in picked],
                                  headers={**headers, "Range": "bytes=10-2000"})
    two = await world.client.get(base, params=[("file", i) for i in picked], headers=headers)
    assert part.status == 206 and await part.read() == (await two.read())[10:2001]


async def test_other_customers_files_are_404_also_through_the_archive(world: World) -> None:
    foreign = await world.add_document(DocumentKind.LICENSE, world.foreign)
    own = await world.add_document(DocumentKind.LICENSE, world.own)
    release = await world.publish("5.0", {"image.iso": IMAGE})
    file_id = release.artifacts[0].id
    headers = world.actors[Role.CUSTOMER_ADMIN].headers
    for url in (f"/api/v1/licenses/{foreign.id}/images", f"/api/v1/licenses/{foreign.id}/images/"
                f"{file_id}", f"/api/v1/licenses/{foreign.id}/images/archive?file={file_id}"):
        assert (await world.client.get(url, headers=headers)).status == 404, url
    # A file id that does not belong to this license's product, inside an archive request.
    response = await world.client.get(f"/api/v1/licenses/{own.id}/images/archive",
                                      params=[("file", file_id), ("file", "nope")],
                                      headers=headers)
    assert response.status == 404
    elsewhere = await world.publish("5.0", {"image.iso": IMAGE}, product=await world.add_product())
    for release_id in (elsewhere.id, "01a21b0a-0000-7000-8000-000000000000"):
        refused = await world.client.get(f"/api/v1/licenses/{own.id}/images/archive",
                                         params={"release": release_id}, headers=headers)
        assert refused.status == 404
        assert (await refused.json())["detail"] == "No such release under this license."
    too_many = await world.client.get(f"/api/v1/licenses/{own.id}/images/archive",
                                      params=[("file", file_id)] * 101, headers=headers)
    assert too_many.status == 400 and too_many.content_type == "application/problem+json"
    assert "file" in (await too_many.text())


async def test_downloads_are_audited_and_listed_for_admins(world: World) -> None:
    license_ = await world.add_document(DocumentKind.LICENSE, world.child)
    release = await world.publish("6.0", {"image.iso": IMAGE})
    user = world.actors[Role.CUSTOMER_ADMIN]
    await world.client.get(f"/api/v1/licenses/{license_.id}/images/{release.artifacts[0].id}",
                           headers=user.headers)
    history = await (await world.client.get("/api/v1/downloads", headers=user.headers)).json()
    [entry] = [e for e in history["items"] if e["version"] == "6.0"]
    assert entry["by"] == user.email and entry["file"] == "image.iso"
    assert entry["license"] == license_.number and entry["archive"] is False
    refused = await world.client.get("/api/v1/downloads",
                                     headers=world.actors[Role.CUSTOMER_USER].headers)
    assert refused.status == 403


async def test_yanked_releases_are_locked_and_customers_without_a_license_see_none(
        world: World) -> None:
    license_ = await world.add_document(DocumentKind.LICENSE, world.own)
    release = await world.publish("7.0", {"image.iso": IMAGE})
    admin = world.actors[Role.STAFF_ADMIN].headers
    yanked = await world.client.patch(
        f"/api/v1/products/{world.product.id}/releases/{release.id}", headers=admin,
        json={"yanked": True})
    assert yanked.status == 200 and (await yanked.json())["yanked_at"]
    shown = {r["version"]: r for r in (await images(world, license_.id))["releases"]}
    assert shown["7.0"]["available"] is False and "withdrawn" in shown["7.0"]["locked_reason"]
    foreign_user = world.actors[Role.CUSTOMER_USER].headers
    other = await world.client.post("/api/v1/products", headers=admin, json={
        "code": f"other-{release.id[-6:]}", "name": "Other", "bucket": "releases"})
    other_id = (await other.json())["id"]
    assert (await world.client.get(f"/api/v1/products/{other_id}/releases",
                                   headers=foreign_user)).status == 404


async def test_s3_downloads_redirect_to_a_presigned_url(
        aiohttp_client: ClientFactory, settings_for: SettingsFor, s3_endpoint: str) -> None:
    client = await aiohttp_client(create_app(settings_for(
        "sqlite", PORTAL_OBJECT_STORE__ADAPTER="s3", PORTAL_OBJECT_STORE__ENDPOINT_URL=s3_endpoint,
        PORTAL_OBJECT_STORE__ACCESS_KEY_ID="test-key",
        PORTAL_OBJECT_STORE__SECRET_ACCESS_KEY="test-secret",
        PORTAL_DOWNLOADS__PRESIGN_TTL="120")))
    world = await build_world(client)
    license_ = await world.add_document(DocumentKind.LICENSE, world.own)
    release = await world.publish("8.0", {"image.iso": IMAGE})
    response = await client.get(
        f"/api/v1/licenses/{license_.id}/images/{release.artifacts[0].id}",
        headers=world.actors[Role.CUSTOMER_USER].headers, allow_redirects=False)
    assert response.status == 302
    location = response.headers["Location"]
    assert location.startswith(s3_endpoint) and "X-Amz-Expires=120" in location
    async with ClientSession() as http, http.get(location) as fetched:
        assert fetched.status == 200 and await fetched.read() == IMAGE
    archive = await client.get(f"/api/v1/licenses/{license_.id}/images/archive",
                               params={"release": release.id},
                               headers=world.actors[Role.CUSTOMER_USER].headers)
    with zipfile.ZipFile(io.BytesIO(await archive.read())) as opened:
        assert opened.read(f"{world.product.code}-8.0/image.iso") == IMAGE



async def test_a_client_that_goes_away_stops_the_reads(aiohttp_client: ClientFactory) -> None:
    chunk, count = b"x" * 65536, 10_000  # 625 MiB, if anyone read it all
    reads: list[int] = []
    closed = asyncio.Event()

    class RemoteStore:
        def local_path(self, bucket: str, key: str) -> None:
            return None

        async def get(self, bucket: str, key: str, *, start: int = 0,
                      end: int | None = None) -> AsyncIterator[bytes]:
            try:
                for n in range(count):
                    reads.append(n)
                    yield chunk
            finally:
                closed.set()

    async def big(request: web.Request) -> web.StreamResponse:
        async def nothing() -> None:
            return None

        return await send(request, RemoteStore(), Download(  # type: ignore[arg-type]
            "big.bin", "application/octet-stream", len(chunk) * count, "e",
            lambda start, end: [Span("b", "k", start, end)], nothing))

    app = web.Application()
    app.router.add_get("/big", big)
    client = await aiohttp_client(app)
    response = await client.get("/big")
    assert len(await response.content.readexactly(4 * len(chunk))) == 4 * len(chunk)
    response.close()
    await asyncio.wait_for(closed.wait(), timeout=10)
    assert len(reads) < count // 10  # stopped within the socket buffers, not at the end
