"""Releases: found in the product's object-store prefix (or registered by staff), listed
per product and per license with what each license may download."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from app.domain import access
from app.domain.audit import AuditEntry
from app.domain.errors import Conflict, Forbidden, Invalid, NotFound
from app.domain.events import ReleasePublished
from app.domain.licensing import Certificate, DocumentFilter, License
from app.domain.paging import MAX_LIMIT, Page, PageRequest
from app.domain.products import Product
from app.domain.releases import (
    VERSION_PATTERN,
    Artifact,
    ArtifactKind,
    Entitlement,
    Release,
    ReleaseKind,
    artifact_kind_for,
    entitlement,
)
from app.domain.users import SYSTEM, Principal
from app.services.work import Transactions, UseCases
from ports.objects import ObjectInfo, ObjectStore
from ports.storage import UnitOfWork
from ports.system import Clock, IdGenerator

log = logging.getLogger(__name__)
MANIFEST = "release.yaml"
EVERYTHING = access.Scope.everything()


@dataclass(frozen=True)
class ReleaseDraft:
    """Staff's registration; what it leaves out comes from release.yaml or defaults."""

    version: str
    kind: ReleaseKind | None = None
    title: str | None = None
    notes: str | None = None
    published_at: datetime | None = None
    advisories: list[dict[str, Any]] | None = None


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
class DownloadTarget:
    """A file a principal may download now, and where it lies."""

    product: Product
    release: Release
    artifact: Artifact
    license: License


class ReleaseService(UseCases):
    def __init__(self, work: Transactions, clock: Clock, ids: IdGenerator,
                 objects: ObjectStore) -> None:
        super().__init__(work, clock, ids)
        self._objects = objects

    # ---- discovering releases

    async def scan_all(self) -> list[Release]:
        """Register every new version of every product; the ones added now."""
        async with self._work() as uow:
            products = await uow.products.list_page(PageRequest(MAX_LIMIT), include_inactive=True)
        added: list[Release] = []
        for product in products[:MAX_LIMIT]:
            added += await self.scan(product)
        return added

    async def scan(self, product: Product) -> list[Release]:
        """Versions under `<prefix><version>/` not registered yet. Safe to run in several
        processes at once: each version is registered once, by whoever gets there first."""
        async with self._work() as uow:
            known = await uow.releases.versions(product.id)
        by_version: dict[str, list[ObjectInfo]] = {}
        after: str | None = None
        while True:
            batch = await self._objects.list_objects(product.bucket, product.prefix,
                                                     after=after, limit=1000)
            for info in batch:
                version, _, rest = info.key[len(product.prefix):].partition("/")
                if rest and version not in known:
                    by_version.setdefault(version, []).append(info)
            if len(batch) < 1000:
                break
            after = batch[-1].key
        added = []
        for version in sorted(by_version):
            if not _valid_version(version):
                log.warning("skipping %s/%s%s/: not a version name", product.bucket,
                            product.prefix, version)
                continue
            release = await self._register(product, ReleaseDraft(version), SYSTEM,
                                           by_version[version])
            if release is not None:
                added.append(release)
        return added

    async def register(self, actor: Principal, product_id: str, draft: ReleaseDraft) -> Release:
        """Staff register a version by hand (its files still come from the store)."""
        access.require_may_manage_products(actor)
        if not _valid_version(draft.version):
            raise Invalid("A version is letters, digits, dots, hyphens, plus and underscores.",
                          field="version")
        async with self._work() as uow:
            product = await uow.products.get(product_id)
        if product is None:
            raise NotFound("No such product.")
        folder = f"{product.prefix}{draft.version}/"
        files = await self._objects.list_objects(product.bucket, folder, limit=10_000)
        release = await self._register(product, draft, actor, files)
        if release is None:
            raise Conflict(f"Version {draft.version} is registered already.", field="version")
        return release

    async def set_yanked(self, actor: Principal, product_id: str, release_id: str,
                         yanked: bool) -> Release:
        access.require_may_manage_products(actor)
        now = self._clock.now()
        async with self._work() as uow:
            release = await uow.releases.get(release_id)
            if release is None or release.product_id != product_id:
                raise NotFound("No such release.")
            await uow.releases.set_yanked(release.id, now if yanked else None)
            await uow.audit.add(self._audit.entry(
                "release.yanked" if yanked else "release.restored", actor, "release",
                release.id, None, version=release.version))
            await uow.commit()
            release.yanked_at = now if yanked else None
        return release

    async def _register(self, product: Product, draft: ReleaseDraft, actor: Principal,
                        files: list[ObjectInfo]) -> Release | None:
        folder = f"{product.prefix}{draft.version}/"
        manifest = await self._manifest(product, folder, files)
        file_meta: dict[str, Any] = manifest.get("files") or {}
        release_id = self._ids.new_id()
        artifacts = []
        for info in files:
            name = info.key[len(folder):]
            if name == MANIFEST:
                continue
            if not name.isprintable():
                log.warning("skipping %s/%s: control characters in the name", product.bucket,
                            info.key)
                continue
            found = file_meta.get(name)
            meta: dict[str, Any] = found if isinstance(found, dict) else {}
            sha256, crc32 = await self._digest(product.bucket, info.key)
            declared = meta.get("sha256")
            if declared and str(declared).lower() != sha256:
                log.warning("%s/%s: release.yaml says sha256 %s, the file has %s",
                            product.bucket, info.key, declared, sha256)
            artifacts.append(Artifact(
                id=self._ids.new_id(), release_id=release_id, key=info.key, name=name,
                kind=_artifact_kind(meta.get("kind"), name), size=info.size, etag=info.etag,
                sha256=sha256, crc32=crc32))
        now = self._clock.now()
        release = Release(
            id=release_id, product_id=product.id, version=draft.version,
            kind=draft.kind or _release_kind(manifest.get("kind")),
            title=draft.title or str(manifest.get("title") or
                                     f"{product.name} {draft.version}"),
            notes=draft.notes if draft.notes is not None else str(manifest.get("notes") or ""),
            published_at=draft.published_at or _moment(manifest.get("published_at")) or now,
            created_at=now, advisories=draft.advisories or _advisories(manifest),
            artifacts=artifacts)
        async with self._work() as uow:
            if not await uow.releases.add(release):
                return None  # another scan registered it first
            await uow.audit.add(self._audit.entry(
                "release.registered", actor if actor.user_id else None, "release", release.id,
                None, product=product.code, version=release.version, files=len(artifacts)))
            uow.events.record(ReleasePublished(
                product_id=product.id, product_name=product.name, release_id=release.id,
                version=release.version, kind=release.kind, title=release.title,
                published_on=release.published_at.date()))
            await uow.commit()
        log.info("registered %s %s with %d files", product.code, release.version, len(artifacts))
        return release

    async def _manifest(self, product: Product, folder: str,
                        files: list[ObjectInfo]) -> dict[str, Any]:
        if not any(info.key == folder + MANIFEST for info in files):
            return {}
        raw = b"".join([chunk async for chunk in self._objects.get(
            product.bucket, folder + MANIFEST, end=256 * 1024)])
        try:
            loaded = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            log.warning("%s/%s%s is not valid YAML: %s", product.bucket, folder, MANIFEST, exc)
            return {}
        return loaded if isinstance(loaded, dict) else {}

    async def _digest(self, bucket: str, key: str) -> tuple[str, int]:
        """SHA-256 and CRC-32 of an object, read once as a stream; hashing runs in a thread
        (hashlib releases the GIL), so the event loop stays free. A local file is read and
        hashed in one thread call through one reused buffer, which leaves nothing behind in
        the allocator after gigabytes."""
        path = self._objects.local_path(bucket, key)
        if path is not None:
            return await asyncio.to_thread(_digest_file, path)
        sha = hashlib.sha256()
        crc = 0

        def feed(chunk: bytes, crc: int) -> int:
            sha.update(chunk)
            return zlib.crc32(chunk, crc)

        async for chunk in self._objects.get(bucket, key):
            crc = await asyncio.to_thread(feed, chunk, crc)
        return sha.hexdigest(), crc

    # ---- reading releases

    async def list_for_product(self, actor: Principal, product_id: str,
                               page: PageRequest) -> Page[Release]:
        """Newest first. Customers see the releases of products they hold a license for."""
        async with self._work() as uow:
            product = await uow.products.get(product_id)
            if product is None or not (product.active or access.sees_inactive_products(actor)):
                raise NotFound("No such product.")
            if not actor.role.is_staff and not await _holds_license(
                    uow, actor, product.id, self._clock.now().date()):
                raise NotFound("No such product among the ones you hold a license for.")
            rows = await uow.releases.list_for_product(product.id, page)
        return Page.from_rows(rows, page)

    async def for_license(self, actor: Principal,
                          license_id: str) -> tuple[License, Product, list[ReleaseView]]:
        """Every release of the license's product, newest first, each file available or
        locked with the reason."""
        today = self._clock.now().date()
        async with self._work() as uow:
            license_, product, certificates = await self._license(uow, actor, license_id, today)
            releases = await uow.releases.list_for_product(product.id, PageRequest(MAX_LIMIT))
        views = []
        for release in releases[:MAX_LIMIT]:
            verdict = entitlement(release, [license_], certificates, today)
            views.append(ReleaseView(release, verdict,
                                     [FileView(a, verdict) for a in release.artifacts]))
        return license_, product, views

    async def download_target(self, actor: Principal, license_id: str,
                              artifact_id: str) -> DownloadTarget:
        """A file the license gives access to now; NotFound outside it, Forbidden if locked."""
        [target] = await self.download_targets(actor, license_id, [artifact_id])
        return target

    async def download_targets(self, actor: Principal, license_id: str,
                               artifact_ids: list[str],
                               release_id: str | None = None) -> list[DownloadTarget]:
        """The files named, and every file of `release_id`, each checked before any is
        sent: one outside the license is 404 (so is a release of another product), one
        locked is 403 with the reason."""
        today = self._clock.now().date()
        async with self._work() as uow:
            license_, product, certificates = await self._license(uow, actor, license_id, today)
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

    async def record_download(self, actor: Principal, targets: list[DownloadTarget],
                              archive: bool) -> None:
        async with self._work() as uow:
            for target in targets:
                await uow.audit.add(self._audit.entry(
                    "download", actor, "artifact", target.artifact.id,
                    target.license.cabinet_id, license=target.license.number,
                    product=target.product.code, version=target.release.version,
                    file=target.artifact.name, size=target.artifact.size, archive=archive))
            await uow.commit()

    async def downloads(self, actor: Principal, page: PageRequest) -> Page[AuditEntry]:
        access.require_may_see_downloads(actor)
        async with self._work() as uow:
            rows = await uow.audit.list_visible(access.visible_scope(actor), page,
                                                action="download")
        return Page.from_rows(rows, page)

    async def _license(self, uow: UnitOfWork, actor: Principal, license_id: str,
                       today: date) -> tuple[License, Product, list[Certificate]]:
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


async def _holds_license(uow: UnitOfWork, actor: Principal, product_id: str,
                         today: date) -> bool:
    return bool(await uow.licenses.list_visible(
        access.visible_scope(actor), DocumentFilter(today=today, product_id=product_id),
        PageRequest(1)))


def _digest_file(path: Path) -> tuple[str, int]:
    sha, crc = hashlib.sha256(), 0
    buffer = bytearray(1024 * 1024)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as handle:
        while read := handle.readinto(buffer):
            sha.update(view[:read])
            crc = zlib.crc32(view[:read], crc)
    return sha.hexdigest(), crc


def _valid_version(version: str) -> bool:
    return bool(re.fullmatch(VERSION_PATTERN, version))


def _release_kind(value: Any) -> ReleaseKind:
    return ReleaseKind(value) if value in ReleaseKind._value2member_map_ else ReleaseKind.RELEASE


def _artifact_kind(value: Any, name: str) -> ArtifactKind:
    if value in ArtifactKind._value2member_map_:
        return ArtifactKind(value)
    return artifact_kind_for(name)


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _advisories(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    found = manifest.get("advisories")
    if not isinstance(found, list):
        return []
    return [{"id": str(a.get("id", "")), "severity": str(a.get("severity", "")),
             "summary": str(a.get("summary", ""))} for a in found if isinstance(a, dict)]
