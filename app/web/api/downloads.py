"""Releases of products, and the files a license gives access to: one, or many as a zip."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from aiohttp import web

from app.domain import access
from app.domain.errors import BadRequest, Conflict
from app.services.archives import Member, Piece, Span, ZipLayout, read_pieces
from app.services.releases import DownloadTarget, ReleaseDraft
from app.web.api.common import json_out, page_request, principal, services
from app.web.keys import SETTINGS
from app.web.openapi import ApiRoutes
from app.web.schemas import (
    ArchiveQuery,
    DownloadOut,
    DownloadPage,
    FileAccess,
    LicenseImages,
    ListQuery,
    ProductRef,
    ReleaseAccess,
    ReleaseCreate,
    ReleaseOut,
    ReleasePage,
    ReleasePatch,
)
from ports.objects import (
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    attachment_header,
    open_for_reading,
)

api = ApiRoutes("downloads")
log = logging.getLogger(__name__)
# At most 18 digits: any real offset, and never a number too long for int().
_RANGE = re.compile(r"^bytes=([0-9]{0,18})-([0-9]{0,18})$")
Pieces = Callable[[int, int], Iterable[Piece]]


# ---- releases


@api.operation("GET", "/api/v1/products/{id}/releases", summary="A product's releases",
               query=ListQuery, response=ReleasePage,
               description="Newest first. Customers see them for products they hold a "
                           "license for.")
async def list_releases(request: web.Request, query: ListQuery) -> web.Response:
    page = await services(request).releases.list_for_product(
        principal(request), request.match_info["id"], page_request(query))
    return json_out(ReleasePage(items=[ReleaseOut.of(r) for r in page.items],
                                next_cursor=page.next_cursor))


@api.operation("POST", "/api/v1/products/{id}/releases", summary="Register a release",
               body=ReleaseCreate, response=ReleaseOut, status=201, errors=(403, 409),
               description="Staff admins. The files are those under <prefix><version>/ in the "
                           "product's bucket; the body's fields win over release.yaml.")
async def create_release(request: web.Request, body: ReleaseCreate) -> web.Response:
    release = await services(request).releases.register(
        principal(request), request.match_info["id"], ReleaseDraft(
            version=body.version, kind=body.kind,
            title=body.title, notes=body.notes, published_at=body.published_at,
            advisories=[a.model_dump() for a in body.advisories] if body.advisories else None))
    return json_out(ReleaseOut.of(release), status=201)


@api.operation("PATCH", "/api/v1/products/{id}/releases/{release_id}",
               summary="Withdraw (yank) or restore a release", body=ReleasePatch,
               response=ReleaseOut, errors=(403,))
async def update_release(request: web.Request, body: ReleasePatch) -> web.Response:
    release = await services(request).releases.set_yanked(
        principal(request), request.match_info["id"], request.match_info["release_id"],
        body.yanked)
    return json_out(ReleaseOut.of(release))


@api.operation("POST", "/api/v1/products/{id}/scan", summary="Look for new releases now",
               response=ReleasePage, errors=(403,),
               description="Staff admins. Registers the versions found in the product's prefix "
                           "that are not registered yet; answers those.")
async def scan_product(request: web.Request) -> web.Response:
    service = services(request)
    access.require_may_manage_products(principal(request))
    product = await service.catalog.get(principal(request), request.match_info["id"])
    added = await service.releases.scan(product)
    return json_out(ReleasePage(items=[ReleaseOut.of(r) for r in added], next_cursor=None))


# ---- what a license gives access to


@api.operation("GET", "/api/v1/licenses/{id}/images",
               summary="Releases and files the license gives access to", response=LicenseImages,
               description="Newest first; every file is available or locked with the reason.")
async def license_images(request: web.Request) -> web.Response:
    license_, product, views = await services(request).releases.for_license(
        principal(request), request.match_info["id"])
    base = f"/api/v1/licenses/{license_.id}/images"
    return json_out(LicenseImages(
        license_id=license_.id, number=license_.number,
        product=ProductRef(id=product.id, code=product.code, name=product.name),
        archive_url=f"{base}/archive",
        releases=[ReleaseAccess(
            id=v.release.id, version=v.release.version, kind=v.release.kind,
            title=v.release.title, published_at=v.release.published_at,
            available=v.entitlement.available, locked_reason=v.entitlement.reason,
            files=[FileAccess(
                id=f.artifact.id, name=f.artifact.name, kind=f.artifact.kind,
                size=f.artifact.size, sha256=f.artifact.sha256,
                available=f.entitlement.available, locked_reason=f.entitlement.reason,
                download_url=f"{base}/{f.artifact.id}" if f.entitlement.available else None)
                for f in v.files]) for v in views]))


@api.operation("GET", "/api/v1/licenses/{id}/images/archive",
               summary="Several files as one zip", query=ArchiveQuery, errors=(403, 416),
               media=("application/zip",),
               extra_responses={200: ("The zip (stored, ZIP64 where needed), with SHA256SUMS.",
                                      None),
                                206: ("Part of the zip (Range).", None)},
               description="`file=<id>` (repeatable) or `release=<id>`. Every file is checked "
                           "before the first byte; the length is known up front and `Range` "
                           "works, so a broken download resumes.")
async def license_archive(request: web.Request, query: ArchiveQuery) -> web.StreamResponse:
    service = services(request)
    actor = principal(request)
    if not query.file and not query.release:
        raise BadRequest("Name files (file=<id>) or a release (release=<id>).", field="file")
    targets = await service.releases.download_targets(
        actor, request.match_info["id"], list(dict.fromkeys(query.file or [])), query.release)
    if not targets:
        raise BadRequest("This release has no files.", field="release")
    layout = _layout(targets)
    etag = hashlib.sha256("|".join(f"{t.artifact.id}:{t.artifact.etag}"
                                   for t in targets).encode()).hexdigest()[:32]

    async def record() -> None:
        await service.releases.record_download(actor, targets, archive=True)

    return await ranged(request, service.objects, layout.size, etag,
                        f"{targets[0].license.number}-files.zip", "application/zip",
                        layout.pieces, record)


def _layout(targets: list[DownloadTarget]) -> ZipLayout:
    members = []
    sums = []
    for target in targets:
        product, release, artifact = target.product, target.release, target.artifact
        if artifact.crc32 is None:
            raise Conflict(f"{artifact.name} was registered without a checksum; download it "
                           "on its own.", field="file")
        name = f"{product.code}-{release.version}/{artifact.name}"
        members.append(Member(name, artifact.size, artifact.crc32, release.published_at,
                              bucket=product.bucket, key=artifact.key))
        sums.append(f"{artifact.sha256}  {name}\n")
    # Dated by its newest release, not by now: the same files make the same bytes, so a
    # download resumed with If-Range continues the very archive it began.
    newest = max(target.release.published_at for target in targets)
    members.append(Member.of_bytes("SHA256SUMS", "".join(sums).encode(), newest))
    return ZipLayout(members)


@api.operation("GET", "/api/v1/licenses/{id}/images/{file_id}", summary="Download one file",
               errors=(403, 416), media=("application/octet-stream",),
               extra_responses={200: ("The file.", None), 206: ("Part of it (Range).", None),
                                302: ("A short-lived link to the object store.", None)},
               description="From S3: a redirect to a presigned URL. From the local store: "
                           "streamed, with Range and If-Range.")
async def download_file(request: web.Request) -> web.StreamResponse:
    service = services(request)
    actor = principal(request)
    target = await service.releases.download_target(actor, request.match_info["id"],
                                                    request.match_info["file_id"])
    bucket, artifact = target.product.bucket, target.artifact

    async def record() -> None:
        await service.releases.record_download(actor, [target], archive=False)

    url = await service.objects.presigned_url(
        bucket, artifact.key, request.app[SETTINGS].downloads.presign_ttl, artifact.name)
    if url is not None:
        await record()
        return web.Response(status=302, headers={"Location": url})
    return await ranged(request, service.objects, artifact.size, artifact.etag, artifact.name,
                        "application/octet-stream",
                        lambda start, end: [Span(bucket, artifact.key, start, end)], record)


async def ranged(request: web.Request, objects: ObjectStore, size: int, etag: str,
                 filename: str, content_type: str, pieces: Pieces,
                 record: Callable[[], Awaitable[None]] | None = None) -> web.StreamResponse:
    """The whole body, or the one byte range asked for (416 if it starts past the end).
    Several ranges, an invalid one, or an If-Range that no longer matches get the whole
    body. `record` runs once per download: for the whole body or a range from byte 0."""
    headers = {"ETag": f'"{etag}"', "Accept-Ranges": "bytes",
               "Content-Disposition": attachment_header(filename),
               "Cache-Control": "private, no-cache"}
    start, end, status = 0, size, 200
    match = _RANGE.match(request.headers.get("Range", "").replace(" ", ""))
    if_range = request.headers.get("If-Range")
    if match and (if_range is None or if_range.strip('"') == etag):
        first, last = match.groups()
        if first and (not last or int(last) >= int(first)):
            start, end = int(first), min(int(last) + 1, size) if last else size
            status = 206
        elif not first and last:
            start, status = max(0, size - int(last)), 206
        if status == 206 and (start >= size or start >= end):
            return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    chosen = await _locate(objects, list(pieces(start, end)))
    if record is not None and start == 0:
        await record()
    response = web.StreamResponse(status=status, headers=headers)
    response.content_type = content_type
    response.content_length = end - start
    await response.prepare(request)
    try:
        await _send(request, response, objects, chosen)
    except (ObjectStoreError, _ShortFile) as exc:
        # The length is promised already: end the connection so that the client sees a
        # broken download instead of waiting for bytes that will not come.
        log.error("download of %s broke off: %s", request.path, exc)
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


class _ShortFile(Exception):
    pass


async def _locate(objects: ObjectStore,
                  pieces: list[Piece]) -> list[tuple[Piece, Path | None]]:
    """Each piece with its local file, if it has one; before the first byte, every local
    file is checked to be there and long enough (ObjectNotFound otherwise)."""
    located: list[tuple[Piece, Path | None]] = []
    for piece in pieces:
        path = None if isinstance(piece, bytes) else objects.local_path(piece.bucket,
                                                                        piece.key)
        if path is not None and not isinstance(piece, bytes):
            try:
                length = (await asyncio.to_thread(path.stat)).st_size
            except OSError:
                length = -1
            if length < piece.end:
                raise ObjectNotFound(f"{piece.bucket}/{piece.key} (needs {piece.end} bytes, "
                                     f"{'absent' if length < 0 else f'has {length}'})")
        located.append((piece, path))
    return located


async def _send(request: web.Request, response: web.StreamResponse, objects: ObjectStore,
                pieces: list[tuple[Piece, Path | None]]) -> None:
    """A client that goes away raises here, which stops the reads at once."""
    for piece, path in pieces:
        if isinstance(piece, bytes):
            await response.write(piece)
        elif path is not None:
            await _sendfile(request, path, piece.start, piece.end - piece.start)
        else:
            chunks = read_pieces(objects, [piece])
            try:
                async for chunk in chunks:
                    await response.write(chunk)
            finally:
                await chunks.aclose()


async def _sendfile(request: web.Request, path: Path, offset: int, count: int) -> None:
    """Bytes of a local file straight from the page cache to the socket, as
    web.FileResponse sends them: no copy through Python."""
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("the client went away")
    handle = await open_for_reading(path)
    try:
        sent = await asyncio.get_running_loop().sendfile(transport, handle, offset, count)
    finally:
        # Closing a file we only read returns at once; in a thread, a cancellation that came
        # before the thread started would skip it and leak the file.
        handle.close()
    if sent < count:
        raise _ShortFile(f"{path} ended {count - sent} bytes early")


# ---- the download history


@api.operation("GET", "/api/v1/downloads", summary="Download history", query=ListQuery,
               response=DownloadPage, errors=(403,),
               description="Customer admins: their organisation and those below it; staff: "
                           "everyone's.")
async def list_downloads(request: web.Request, query: ListQuery) -> web.Response:
    page = await services(request).releases.downloads(principal(request), page_request(query))
    return json_out(DownloadPage(items=[DownloadOut(
        id=e.id, at=e.at, by=e.actor_email, cabinet_id=e.cabinet_id,
        license=str(e.details.get("license", "")), product=str(e.details.get("product", "")),
        version=str(e.details.get("version", "")), file=str(e.details.get("file", "")),
        size=int(e.details.get("size", 0)), archive=bool(e.details.get("archive")))
        for e in page.items], next_cursor=page.next_cursor))
