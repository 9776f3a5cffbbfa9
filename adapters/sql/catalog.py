"""The catalogue in SQL: products, and their releases with their artifacts."""

from __future__ import annotations

from datetime import datetime

from adapters.sql.session import Row, SqlSession
from adapters.sql.statements import in_list, page_filter
from app.domain.paging import PageRequest
from app.domain.products import Product
from app.domain.releases import Artifact, ArtifactKind, Release, ReleaseKind

PRODUCT_COLUMNS = ("id, code, name, description, parameters, bucket, prefix, active, created_at,"
                    " updated_at")


def product_of(row: Row) -> Product:
    return Product(**row)


class SqlProducts:
    def __init__(self, db: SqlSession) -> None:
        self._db = db

    async def add(self, product: Product) -> None:
        await self._db.execute(
            f"INSERT INTO products ({PRODUCT_COLUMNS}) VALUES (:id, :code, :name, :description,"
            " :parameters, :bucket, :prefix, :active, :created_at, :updated_at)", vars(product))

    async def get(self, product_id: str) -> Product | None:
        row = await self._db.fetch_one(
            f"SELECT {PRODUCT_COLUMNS} FROM products WHERE id = :id", {"id": product_id})
        return product_of(row) if row else None

    async def get_by_code(self, code: str) -> Product | None:
        row = await self._db.fetch_one(
            f"SELECT {PRODUCT_COLUMNS} FROM products WHERE code = :code", {"code": code})
        return product_of(row) if row else None

    async def get_many(self, product_ids: list[str]) -> list[Product]:
        if not product_ids:
            return []
        listed, names = in_list("id", product_ids)
        rows = await self._db.fetch_all(
            f"SELECT {PRODUCT_COLUMNS} FROM products WHERE id IN ({listed}) ORDER BY id",
            names)
        return [product_of(row) for row in rows]

    async def list_page(self, page: PageRequest, *, include_inactive: bool) -> list[Product]:
        after, page_params = page_filter(page, "id")
        active = "1 = 1" if include_inactive else "active = :active"
        rows = await self._db.fetch_all(
            f"SELECT {PRODUCT_COLUMNS} FROM products WHERE {active} AND {after}"
            " ORDER BY id LIMIT :page_limit", {**page_params, "active": True})
        return [product_of(row) for row in rows]

    async def update(self, product: Product) -> None:
        await self._db.execute(
            "UPDATE products SET name = :name, description = :description,"
            " parameters = :parameters, bucket = :bucket, prefix = :prefix, active = :active,"
            " updated_at = :updated_at WHERE id = :id", vars(product))



_RELEASE_COLUMNS = ("id, product_id, version, kind, title, notes, advisories, published_at,"
                    " created_at, yanked_at")
_ARTIFACT_COLUMNS = "id, release_id, key, name, kind, size, etag, sha256, crc32"


def _artifact(row: Row) -> Artifact:
    return Artifact(**{**row, "kind": ArtifactKind(row["kind"]), "size": int(row["size"]),
                       "crc32": None if row["crc32"] is None else int(row["crc32"])})


class SqlReleases:
    def __init__(self, db: SqlSession) -> None:
        self._db = db

    async def add(self, release: Release) -> bool:
        inserted = await self._db.execute(
            f"INSERT INTO releases ({_RELEASE_COLUMNS}) VALUES (:id, :product_id, :version,"
            " :kind, :title, :notes, :advisories, :published_at, :created_at, :yanked_at)"
            " ON CONFLICT (product_id, version) DO NOTHING",
            {**{k: v for k, v in vars(release).items() if k != "artifacts"},
             "kind": release.kind.value})
        if inserted != 1:
            return False
        for artifact in release.artifacts:
            await self._db.execute(
                f"INSERT INTO artifacts ({_ARTIFACT_COLUMNS}) VALUES (:id, :release_id, :key,"
                " :name, :kind, :size, :etag, :sha256, :crc32)",
                {**vars(artifact), "kind": artifact.kind.value})
        return True

    async def _with_artifacts(self, rows: list[Row]) -> list[Release]:
        releases = [Release(**{**row, "kind": ReleaseKind(row["kind"])}) for row in rows]
        if not releases:
            return releases
        listed, names = in_list("r", [release.id for release in releases])
        artifacts = await self._db.fetch_all(
            f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts WHERE release_id IN ({listed})"
            " ORDER BY key", names)
        by_id = {release.id: release for release in releases}
        for row in artifacts:
            by_id[row["release_id"]].artifacts.append(_artifact(row))
        return releases

    async def get(self, release_id: str) -> Release | None:
        rows = await self._db.fetch_all(
            f"SELECT {_RELEASE_COLUMNS} FROM releases WHERE id = :id", {"id": release_id})
        found = await self._with_artifacts(rows)
        return found[0] if found else None

    async def versions(self, product_id: str) -> set[str]:
        rows = await self._db.fetch_all(
            "SELECT version FROM releases WHERE product_id = :product_id",
            {"product_id": product_id})
        return {str(row["version"]) for row in rows}

    async def list_for_product(self, product_id: str, page: PageRequest,
                               include_yanked: bool = True) -> list[Release]:
        where = ["product_id = :product_id"]
        if not include_yanked:
            where.append("yanked_at IS NULL")
        if page.after is not None:
            # Keyset on (published_at, id), newest first, from the last release seen.
            where.append(
                "(published_at < (SELECT published_at FROM releases WHERE id = :after)"
                " OR (published_at = (SELECT published_at FROM releases WHERE id = :after)"
                " AND id < :after))")
        rows = await self._db.fetch_all(
            f"SELECT {_RELEASE_COLUMNS} FROM releases WHERE {' AND '.join(where)}"
            " ORDER BY published_at DESC, id DESC LIMIT :page_limit",
            {"product_id": product_id, "after": page.after, "page_limit": page.limit + 1})
        return await self._with_artifacts(rows)

    async def get_artifact(self, artifact_id: str) -> tuple[Release, Artifact] | None:
        row = await self._db.fetch_one(
            f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts WHERE id = :id", {"id": artifact_id})
        if row is None:
            return None
        release = await self.get(str(row["release_id"]))
        return (release, _artifact(row)) if release else None

    async def set_yanked(self, release_id: str, at: datetime | None) -> None:
        await self._db.execute("UPDATE releases SET yanked_at = :at WHERE id = :id",
                               {"id": release_id, "at": at})
