"""The files a license gives access to, one or many as a zip, and the download history.

What to send is the download service's plan; this module speaks HTTP around it: byte
ranges, conditional requests, and member bytes sent straight from local files.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

from aiohttp import web

from app.services.archives import Piece, read_pieces
from app.services.downloads import Download
from app.web.api.common import json_out, page_request, principal, services
from app.web.openapi import ApiRoutes
from app.web.schemas.common import ListQuery
from app.web.schemas.downloads import (
    ArchiveQuery,
    DownloadOut,
    DownloadPage,
    FileAccess,
    LicenseImages,
    ReleaseAccess,
)
from app.web.schemas.licensing import ProductRef
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


@api.operation("GET", "/api/v1/licenses/{id}/images",
               summary="Releases and files the license gives access to", response=LicenseImages,
               description="Newest first; every file is available or locked with the reason.")
async def license_images(request: web.Request) -> web.Response:
    found = await services(request).downloads.for_license(principal(request),
                                                          request.match_info["id"])
    license_, product, views = found.license, found.product, found.releases
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
    download = await services(request).downloads.archive(
        principal(request), request.match_info["id"], query.file or [], query.release)
    return await send(request, services(request).objects, download)


@api.operation("GET", "/api/v1/licenses/{id}/images/{file_id}", summary="Download one file",
               errors=(403, 416), media=("application/octet-stream",),
               extra_responses={200: ("The file.", None), 206: ("Part of it (Range).", None),
                                302: ("A short-lived link to the object store.", None)},
               description="From S3: a redirect to a presigned URL. From the local store: "
                           "streamed, with Range and If-Range.")
async def download_file(request: web.Request) -> web.StreamResponse:
    download = await services(request).downloads.file(
        principal(request), request.match_info["id"], request.match_info["file_id"])
    if download.redirect is not None:
        return web.Response(status=302, headers={"Location": download.redirect})
    return await send(request, services(request).objects, download)


async def send(request: web.Request, objects: ObjectStore,
               download: Download) -> web.StreamResponse:
    """The whole body, or the one byte range asked for (416 if it starts past the end).
    Several ranges, an invalid one, or an If-Range that no longer matches get the whole
    body. The download is recorded once: for the whole body or a range from byte 0."""
    size, etag = download.size, download.etag
    headers = {"ETag": f'"{etag}"', "Accept-Ranges": "bytes",
               "Content-Disposition": attachment_header(download.filename),
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
    chosen = await _locate(objects, list(download.pieces(start, end)))
    if start == 0:
        await download.record()
    response = web.StreamResponse(status=status, headers=headers)
    response.content_type = download.content_type
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
    page = await services(request).downloads.history(principal(request), page_request(query))
    return json_out(DownloadPage(items=[DownloadOut(
        id=e.id, at=e.at, by=e.actor_email, cabinet_id=e.cabinet_id,
        license=str(e.details.get("license", "")), product=str(e.details.get("product", "")),
        version=str(e.details.get("version", "")), file=str(e.details.get("file", "")),
        size=int(e.details.get("size", 0)), archive=bool(e.details.get("archive")))
        for e in page.items], next_cursor=page.next_cursor))
