"""Releases: found in the product's object-store prefix (or registered by staff), withdrawn
and restored by staff, and listed per product. What a license may download of them is
app.services.downloads."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from app.domain import access
from app.domain.errors import Conflict, Invalid, NotFound
from app.domain.events import ReleasePublished
from app.domain.licensing import DocumentFilter
from app.domain.paging import MAX_LIMIT, Page, PageRequest
from app.domain.products import Product
from app.domain.releases import (
    VERSION_PATTERN,
    Artifact,
    ArtifactKind,
    Release,
    ReleaseKind,
    artifact_kind_for,
)
from app.domain.users import Principal
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


class ReleaseService(UseCases):
    def __init__(self, work: Transactions, clock: Clock, ids: IdGenerator,
                 objects: ObjectStore) -> None:
        super().__init__(work, clock, ids)
        self._objects = objects

    # ---- discovering releases

    async def scan_all(self, actor: Principal) -> list[Release]:
        """Register every new version of every product; the ones added now."""
        access.require_may_manage_products(actor)
        async with self._work(read_only=True) as uow:
            products = await uow.products.list_page(PageRequest(MAX_LIMIT), include_inactive=True)
        added: list[Release] = []
        for product in products[:MAX_LIMIT]:
            added += await self._scan(actor, product)
        return added

    async def scan(self, actor: Principal, product_id: str) -> list[Release]:
        """Register the new versions of one product ("Scan now"); the ones added now."""
        access.require_may_manage_products(actor)
        async with self._work(read_only=True) as uow:
            product = await uow.products.get(product_id)
        if product is None:
            raise NotFound("No such product.")
        return await self._scan(actor, product)

    async def _scan(self, actor: Principal, product: Product) -> list[Release]:
        """Versions under `<prefix><version>/` not registered yet. Safe to run in several
        processes at once: each version is registered once, by whoever gets there first."""
        async with self._work(read_only=True) as uow:
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
            release = await self._register(product, ReleaseDraft(version), actor,
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
        async with self._work(read_only=True) as uow:
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
        async with self._work(read_only=True) as uow:
            product = await uow.products.get(product_id)
            if product is None or not (product.active or access.sees_inactive_products(actor)):
                raise NotFound("No such product.")
            if not access.sees_all_releases(actor) and not await _holds_license(
                    uow, actor, product.id, self._clock.now().date()):
                raise NotFound("No such product among the ones you hold a license for.")
            rows = await uow.releases.list_for_product(product.id, page)
        return Page.from_rows(rows, page)


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
