"""What a license gives access to, and how each download is answered: one file, or many as
a zip laid out in advance; and the download history.

A download is answered from a plan (`Download`): a redirect to the object store, or the
bytes to send (headers and member bytes of a zip, spans of stored objects) with the
length and ETag known before the first byte. The web layer only speaks HTTP around it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date

from app.domain import access
from app.domain.audit import EVERY_ENTRY, AuditEntry, AuditFilter
from app.domain.errors import BadRequest, Conflict, Forbidden, NotFound
from app.domain.licensing import Certificate, DocumentFilter, DocumentKind, License
from app.domain.paging import MAX_LIMIT, Page, PageRequest
from app.domain.products import Product
from app.domain.releases import Artifact, Entitlement, Release, entitlement
from app.domain.users import Principal
from app.services.archives import Member, Piece, Span, ZipLayout
from app.services.audit_log import audit_page
from app.services.licensing import DocumentView
from app.services.work import Transactions, UseCases
from ports.objects import ObjectStore
from ports.storage import UnitOfWork
from ports.system import Clock, IdGenerator

EVERYTHING = access.Scope.everything()


@dataclass(frozen=True)
class FileView:
    artifact: Artifact
    entitlement: Entitlement


@dataclass(frozen=True)
class ReleaseView:
    release: Release
    entitlement: Entitlement
    files: list[FileView] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.release.id


@dataclass(frozen=True)
class LicenseFiles:
    """Every release of a license's product, newest first, each available or locked."""

    license: License
    product: Product
    releases: list[ReleaseView]


@dataclass(frozen=True)
class DownloadTarget:
    """A file a principal may download now, and where it lies."""

    product: Product
    release: Release
    artifact: Artifact
    license: License


@dataclass(frozen=True)
class Download:
    """How to answer one download. With `redirect`, send the client there (a short-lived
    link to the store) and nothing else; otherwise send `size` bytes, those [start, end)
    of which `pieces(start, end)` gives, and call `record` once the download is one to
    count (the whole body, or a range from its first byte)."""

    filename: str
    content_type: str
    size: int
    etag: str
    pieces: Callable[[int, int], Iterable[Piece]]
    record: Callable[[], Awaitable[None]]
    redirect: str | None = None


class DownloadService(UseCases):
    def __init__(self, work: Transactions, clock: Clock, ids: IdGenerator,
                 objects: ObjectStore, presign_ttl: int) -> None:
        super().__init__(work, clock, ids)
        self._objects = objects
        self._presign_ttl = presign_ttl

    async def for_license(self, actor: Principal, license_id: str) -> LicenseFiles:
        today = self._clock.now().date()
        async with self._work(read_only=True) as uow:
            license_, product, certificates = await _license(uow, actor, license_id, today)
            releases = await uow.releases.list_for_product(product.id, PageRequest(MAX_LIMIT))
        views = []
        for release in releases[:MAX_LIMIT]:
            verdict = entitlement(release, [license_], certificates, today)
            views.append(ReleaseView(release, verdict,
                                     [FileView(a, verdict) for a in release.artifacts]))
        return LicenseFiles(license_, product, views)

    async def file(self, actor: Principal, license_id: str, file_id: str) -> Download:
        """One file: from a store with links of its own, a redirect to one (counted at
        once); else its bytes, with ranges."""
        [target] = await self.targets(actor, license_id, [file_id])
        bucket, artifact = target.product.bucket, target.artifact

        async def record() -> None:
            await self._record(actor, [target], archive=False)

        def pieces(start: int, end: int) -> list[Piece]:
            return [Span(bucket, artifact.key, start, end)]

        url = await self._objects.presigned_url(bucket, artifact.key, self._presign_ttl,
                                                artifact.name)
        if url is not None:
            await record()
        return Download(artifact.name, "application/octet-stream", artifact.size,
                        artifact.etag, pieces, record, redirect=url)

    async def archive(self, actor: Principal, license_id: str, file_ids: list[str],
                      release_id: str | None) -> Download:
        """The files named and every file of `release_id`, as one stored zip with a
        SHA256SUMS member; every file is checked before anything is sent."""
        if not file_ids and not release_id:
            raise BadRequest("Name files (file=<id>) or a release (release=<id>).",
                             field="file")
        targets = await self.targets(actor, license_id, list(dict.fromkeys(file_ids)),
                                     release_id)
        if not targets:
            raise BadRequest("This release has no files.", field="release")
        layout = _layout(targets)
        etag = hashlib.sha256("|".join(f"{t.artifact.id}:{t.artifact.etag}"
                                       for t in targets).encode()).hexdigest()[:32]

        async def record() -> None:
            await self._record(actor, targets, archive=True)

        return Download(f"{targets[0].license.number}-files.zip", "application/zip",
                        layout.size, etag, layout.pieces, record)

    async def targets(self, actor: Principal, license_id: str, artifact_ids: list[str],
                      release_id: str | None = None) -> list[DownloadTarget]:
        """The files named, and every file of `release_id`, each checked before any is
        sent: one outside the license is 404 (so is a release of another product), one
        locked is 403 with the reason."""
        today = self._clock.now().date()
        async with self._work(read_only=True) as uow:
            license_, product, certificates = await _license(uow, actor, license_id, today)
            found: list[tuple[Release, Artifact]] = []
            if release_id is not None:
                release = await uow.releases.get(release_id)
                if release is None or release.product_id != product.id:
                    raise NotFound("No such release under this license.", field="release")
                found += [(release, artifact) for artifact in release.artifacts]
            for artifact_id in artifact_ids:
                pair = await uow.releases.get_artifact(artifact_id)
                if pair is None or pair[0].product_id != product.id:
                    raise NotFound("No such file under this license.", field="file")
                found.append(pair)
        targets: dict[str, DownloadTarget] = {}
        for release, artifact in found:
            verdict = entitlement(release, [license_], certificates, today)
            if not verdict.available:
                raise Forbidden(f"{artifact.name}: {verdict.reason}", field="file")
            targets.setdefault(artifact.id, DownloadTarget(product, release, artifact, license_))
        return list(targets.values())

    async def history(self, actor: Principal, page: PageRequest,
                      filters: AuditFilter = EVERY_ENTRY) -> Page[AuditEntry]:
        """The downloads of the caller's subtree (staff: everyone's) that pass the filters
        (product, who, when), by id or a numbered page by time with the count."""
        access.require_may_see_downloads(actor)
        async with self._work(read_only=True) as uow:
            return await audit_page(uow, actor, replace(filters, action="download"), page)

    async def record_document(self, actor: Principal, view: DocumentView, what: str,
                              filename: str, size: int) -> None:
        """A license's or certificate's PDF, or a license file, was downloaded (the document
        as its use case read it): it goes in the download history beside the release files."""
        document = view.document
        async with self._work() as uow:
            await uow.audit.add(self._audit.entry(
                "download", actor, document.kind.value, document.id, view.cabinet.id,
                license=document.number, document=_path(document.kind, document.id),
                product=view.product.code, product_name=view.product.name,
                file=filename, size=size, what=what))
            await uow.commit()

    async def _record(self, actor: Principal, targets: list[DownloadTarget],
                      archive: bool) -> None:
        async with self._work() as uow:
            for target in targets:
                await uow.audit.add(self._audit.entry(
                    "download", actor, "artifact", target.artifact.id,
                    target.license.cabinet_id, license=target.license.number,
                    document=_path(DocumentKind.LICENSE, target.license.id),
                    product=target.product.code, product_name=target.product.name,
                    version=target.release.version, file=target.artifact.name,
                    size=target.artifact.size, archive=archive))
            await uow.commit()


def _path(kind: DocumentKind, document_id: str) -> str:
    return f"/{'licenses' if kind is DocumentKind.LICENSE else 'certificates'}/{document_id}"


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


async def _license(uow: UnitOfWork, actor: Principal, license_id: str,
                   today: date) -> tuple[License, Product, list[Certificate]]:
    """A license the actor sees, its product, and the support certificates of its holder
    (and of the cabinets below it) for that product."""
    license_ = await uow.licenses.get(license_id, access.visible_scope(actor))
    if license_ is None:
        raise NotFound("No such license.")
    product = await uow.products.get(license_.product_id)
    owner = await uow.cabinets.get(license_.cabinet_id, EVERYTHING)
    if product is None or owner is None:
        raise NotFound("No such license.")
    certificates = await uow.certificates.list_visible(
        access.Scope.subtree(owner.path),
        DocumentFilter(today=today, product_id=product.id), PageRequest(MAX_LIMIT))
    return license_, product, list(certificates)
