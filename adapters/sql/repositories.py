"""The repositories of the storage port, on any `SqlSession`."""

from __future__ import annotations

import hashlib
import json
import zlib
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, ClassVar, Generic, TypeVar

from adapters.sql.session import Row, SqlSession
from app.domain.access import Scope
from app.domain.audit import AuditEntry
from app.domain.cabinets import Cabinet, CabinetKind
from app.domain.licensing import (
    Certificate,
    DocumentFilter,
    DocumentKind,
    DocumentStatus,
    License,
    Transfer,
)
from app.domain.notifications import (
    Batch,
    Message,
    Notification,
    NotificationKind,
    Preference,
)
from app.domain.outbox import OutboxMessage, OutboxStatus
from app.domain.paging import PageRequest
from app.domain.products import Product
from app.domain.releases import Artifact, ArtifactKind, Release, ReleaseKind
from app.domain.reminders import DueDocument
from app.domain.roles import Role
from app.domain.sessions import LoginSession
from app.domain.users import User
from ports.storage import EventLog

D = TypeVar("D", License, Certificate)


# Rows (or list items) per statement: a few thousand parameters at most, far below SQLite's
# 32,766, and statements PostgreSQL parses quickly.
BATCH_ROWS = 500


def in_list(prefix: str, values: list[Any]) -> tuple[str, dict[str, Any]]:
    """`:p0, :p1, ...` for an IN (...) list, and the parameters."""
    names = {f"{prefix}{i}": value for i, value in enumerate(values)}
    return ", ".join(":" + name for name in names), names


async def insert_rows(db: SqlSession, table: str, columns: str, rows: list[dict[str, Any]],
                      suffix: str = "") -> None:
    """One INSERT of many rows; each row a dict with every one of `columns`."""
    names = [column.strip() for column in columns.split(",")]
    params: dict[str, Any] = {}
    groups = []
    for i, row in enumerate(rows):
        groups.append("(" + ", ".join(f":{name}_{i}" for name in names) + ")")
        params.update({f"{name}_{i}": row[name] for name in names})
    await db.execute(f"INSERT INTO {table} ({columns}) VALUES {', '.join(groups)}{suffix}",
                     params)


def scope_filter(scope: Scope, path_column: str) -> tuple[str, dict[str, Any]]:
    """The SQL form of the access rule's scope: a prefix match on the materialised path."""
    if scope.path_prefix is None:
        return "1 = 1", {}
    return f"{path_column} LIKE :scope_prefix", {"scope_prefix": scope.path_prefix + "%"}


def page_filter(page: PageRequest, id_column: str) -> tuple[str, dict[str, Any]]:
    if page.after is None:
        return "1 = 1", {"page_limit": page.limit + 1}
    return f"{id_column} > :page_after", {"page_after": page.after, "page_limit": page.limit + 1}


_CABINET_COLUMNS = ("c.id, c.name, c.kind, c.parent_id, c.path, c.external_id, c.created_at,"
                    " c.updated_at")


def _cabinet(row: Row) -> Cabinet:
    return Cabinet(id=row["id"], name=row["name"], kind=CabinetKind(row["kind"]),
                   parent_id=row["parent_id"], path=row["path"], external_id=row["external_id"],
                   created_at=row["created_at"], updated_at=row["updated_at"])


class SqlCabinets:
    def __init__(self, db: SqlSession) -> None:
        self._db = db

    async def add(self, cabinet: Cabinet) -> None:
        await self._db.execute(
            "INSERT INTO cabinets (id, name, kind, parent_id, path, external_id, created_at,"
            " updated_at) VALUES (:id, :name, :kind, :parent_id, :path, :external_id,"
            " :created_at, :updated_at)",
            {**vars(cabinet), "kind": cabinet.kind.value},
        )

    async def _one(self, where: str, params: dict[str, Any], scope: Scope,
                   for_update: bool = False) -> Cabinet | None:
        in_scope, scope_params = scope_filter(scope, "c.path")
        lock = self._db.for_update if for_update else ""
        row = await self._db.fetch_one(
            f"SELECT {_CABINET_COLUMNS} FROM cabinets c WHERE {where} AND {in_scope}{lock}",
            {**params, **scope_params},
        )
        return _cabinet(row) if row else None

    async def get(self, cabinet_id: str, scope: Scope, *,
                  for_update: bool = False) -> Cabinet | None:
        return await self._one("c.id = :id", {"id": cabinet_id}, scope, for_update)

    async def get_by_external_id(self, external_id: str, scope: Scope) -> Cabinet | None:
        return await self._one("c.external_id = :external_id", {"external_id": external_id}, scope)

    async def get_many(self, cabinet_ids: list[str], scope: Scope) -> list[Cabinet]:
        if not cabinet_ids:
            return []
        listed, names = in_list("id", cabinet_ids)
        in_scope, scope_params = scope_filter(scope, "c.path")
        rows = await self._db.fetch_all(
            f"SELECT {_CABINET_COLUMNS} FROM cabinets c"
            f" WHERE c.id IN ({listed}) AND {in_scope}"
            " ORDER BY c.id",
            {**names, **scope_params},
        )
        return [_cabinet(row) for row in rows]

    async def _page(self, where: str, params: dict[str, Any], scope: Scope,
                    page: PageRequest) -> list[Cabinet]:
        in_scope, scope_params = scope_filter(scope, "c.path")
        after, page_params = page_filter(page, "c.id")
        rows = await self._db.fetch_all(
            f"SELECT {_CABINET_COLUMNS} FROM cabinets c WHERE {where} AND {in_scope} AND {after}"
            " ORDER BY c.id LIMIT :page_limit",
            {**params, **scope_params, **page_params},
        )
        return [_cabinet(row) for row in rows]

    async def list_visible(self, scope: Scope, page: PageRequest) -> list[Cabinet]:
        return await self._page("1 = 1", {}, scope, page)

    async def children(self, parent_id: str, scope: Scope, page: PageRequest) -> list[Cabinet]:
        return await self._page("c.parent_id = :parent_id", {"parent_id": parent_id}, scope, page)

    async def update(self, cabinet: Cabinet) -> None:
        await self._db.execute(
            "UPDATE cabinets SET name = :name, kind = :kind, external_id = :external_id,"
            " updated_at = :updated_at WHERE id = :id",
            {"id": cabinet.id, "name": cabinet.name, "kind": cabinet.kind.value,
             "external_id": cabinet.external_id, "updated_at": cabinet.updated_at},
        )

    async def move(self, cabinet: Cabinet, new_parent: Cabinet | None, at: datetime) -> Cabinet:
        old_path = cabinet.path
        new_path = f"{new_parent.path if new_parent else '/'}{cabinet.id}/"
        await self._db.execute(
            "UPDATE cabinets SET path = :new_path || substr(path, :cut)"
            " WHERE path LIKE :old_prefix",
            {"new_path": new_path, "cut": len(old_path) + 1, "old_prefix": old_path + "%"},
        )
        await self._db.execute(
            "UPDATE cabinets SET parent_id = :parent_id, updated_at = :at WHERE id = :id",
            {"parent_id": new_parent.id if new_parent else None, "at": at, "id": cabinet.id},
        )
        cabinet.path, cabinet.parent_id, cabinet.updated_at = (
            new_path, new_parent.id if new_parent else None, at)
        return cabinet


_PRODUCT_COLUMNS = ("id, code, name, description, parameters, bucket, prefix, active, created_at,"
                    " updated_at")


def _product(row: Row) -> Product:
    return Product(**row)


class SqlProducts:
    def __init__(self, db: SqlSession) -> None:
        self._db = db

    async def add(self, product: Product) -> None:
        await self._db.execute(
            f"INSERT INTO products ({_PRODUCT_COLUMNS}) VALUES (:id, :code, :name, :description,"
            " :parameters, :bucket, :prefix, :active, :created_at, :updated_at)", vars(product))

    async def get(self, product_id: str) -> Product | None:
        row = await self._db.fetch_one(
            f"SELECT {_PRODUCT_COLUMNS} FROM products WHERE id = :id", {"id": product_id})
        return _product(row) if row else None

    async def get_by_code(self, code: str) -> Product | None:
        row = await self._db.fetch_one(
            f"SELECT {_PRODUCT_COLUMNS} FROM products WHERE code = :code", {"code": code})
        return _product(row) if row else None

    async def get_many(self, product_ids: list[str]) -> list[Product]:
        if not product_ids:
            return []
        listed, names = in_list("id", product_ids)
        rows = await self._db.fetch_all(
            f"SELECT {_PRODUCT_COLUMNS} FROM products WHERE id IN ({listed}) ORDER BY id",
            names)
        return [_product(row) for row in rows]

    async def list_page(self, page: PageRequest, *, include_inactive: bool) -> list[Product]:
        after, page_params = page_filter(page, "id")
        active = "1 = 1" if include_inactive else "active = :active"
        rows = await self._db.fetch_all(
            f"SELECT {_PRODUCT_COLUMNS} FROM products WHERE {active} AND {after}"
            " ORDER BY id LIMIT :page_limit", {**page_params, "active": True})
        return [_product(row) for row in rows]

    async def update(self, product: Product) -> None:
        await self._db.execute(
            "UPDATE products SET name = :name, description = :description,"
            " parameters = :parameters, bucket = :bucket, prefix = :prefix, active = :active,"
            " updated_at = :updated_at WHERE id = :id", vars(product))


_DOCUMENT_COLUMNS = ("id", "number", "product_id", "cabinet_id", "valid_from", "valid_to",
                     "revoked_at", "purchase_item", "created_at", "updated_at")
_STATUS = {
    DocumentStatus.PENDING: "d.revoked_at IS NULL AND d.valid_from > :today"
                            " AND (d.valid_to IS NULL OR d.valid_to >= :today)",
    DocumentStatus.ACTIVE: "d.revoked_at IS NULL AND d.valid_from <= :today"
                           " AND (d.valid_to IS NULL OR d.valid_to >= :today)",
    DocumentStatus.EXPIRED: "d.revoked_at IS NULL AND d.valid_to < :today",
    DocumentStatus.REVOKED: "d.revoked_at IS NOT NULL",
}


class _SqlDocuments(Generic[D]):
    """One table of issued documents; the subclasses name the table and its own columns."""

    table: ClassVar[str]
    own_columns: ClassVar[tuple[str, ...]]
    make: Callable[..., D]

    def __init__(self, db: SqlSession) -> None:
        self._db = db
        self._columns = (*_DOCUMENT_COLUMNS, *self.own_columns)
        self._select = ", ".join(f"d.{column}" for column in self._columns)

    async def add(self, document: D) -> None:
        await self._db.execute(
            f"INSERT INTO {self.table} ({', '.join(self._columns)})"
            f" VALUES ({', '.join(':' + column for column in self._columns)})",
            {column: getattr(document, column) for column in self._columns})

    async def _one(self, where: str, params: dict[str, Any], scope: Scope,
                   for_update: bool = False) -> D | None:
        in_scope, scope_params = scope_filter(scope, "c.path")
        lock = f"{self._db.for_update} OF d" if for_update and self._db.for_update else ""
        row = await self._db.fetch_one(
            f"SELECT {self._select} FROM {self.table} d JOIN cabinets c ON c.id = d.cabinet_id"
            f" WHERE {where} AND {in_scope}{lock}", {**params, **scope_params})
        return self.make(**row) if row else None

    async def get(self, document_id: str, scope: Scope, *, for_update: bool = False) -> D | None:
        return await self._one("d.id = :id", {"id": document_id}, scope, for_update)

    async def get_by_number(self, number: str, scope: Scope) -> D | None:
        return await self._one("d.number = :number", {"number": number}, scope)

    async def get_by_purchase_item(self, purchase_item: str, scope: Scope,
                                   *, for_update: bool = False) -> D | None:
        return await self._one("d.purchase_item = :item", {"item": purchase_item}, scope,
                               for_update)

    async def number_taken(self, number: str) -> bool:
        return await self._db.fetch_one(
            f"SELECT 1 AS taken FROM {self.table} WHERE number = :number",
            {"number": number}) is not None

    async def list_visible(self, scope: Scope, filters: DocumentFilter,
                           page: PageRequest) -> list[D]:
        in_scope, params = scope_filter(scope, "c.path")
        after, page_params = page_filter(page, "d.id")
        where = [in_scope, after]
        if filters.product_id is not None:
            where.append("d.product_id = :product_id")
        if filters.status is not None:
            where.append(_STATUS[filters.status])
        if filters.expires_before is not None:
            where.append("d.valid_to IS NOT NULL AND d.valid_to < :expires_before")
        rows = await self._db.fetch_all(
            f"SELECT {self._select} FROM {self.table} d JOIN cabinets c ON c.id = d.cabinet_id"
            f" WHERE {' AND '.join(where)} ORDER BY d.id LIMIT :page_limit",
            {**params, **page_params, "product_id": filters.product_id, "today": filters.today,
             "expires_before": filters.expires_before})
        return [self.make(**row) for row in rows]

    async def update(self, document: D) -> None:
        changing = ("cabinet_id", "valid_from", "valid_to", "revoked_at", "updated_at",
                    *self.own_columns)
        await self._db.execute(
            f"UPDATE {self.table} SET {', '.join(f'{c} = :{c}' for c in changing)}"
            " WHERE id = :id", {"id": document.id, **{c: getattr(document, c) for c in changing}})


class SqlLicenses(_SqlDocuments[License]):
    table = "licenses"
    own_columns = ("edition", "seats")
    make = License


class SqlCertificates(_SqlDocuments[Certificate]):
    table = "certificates"
    own_columns = ("level", "license_id")
    make = Certificate


class SqlTransfers:
    def __init__(self, db: SqlSession) -> None:
        self._db = db

    async def add(self, transfer: Transfer) -> None:
        await self._db.execute(
            "INSERT INTO document_transfers (id, kind, document_id, from_cabinet_id,"
            " to_cabinet_id, at, actor_id, actor_email) VALUES (:id, :kind, :document_id,"
            " :from_cabinet_id, :to_cabinet_id, :at, :actor_id, :actor_email)",
            {**vars(transfer), "kind": transfer.kind.value})

    async def of_document(self, document_id: str) -> list[Transfer]:
        rows = await self._db.fetch_all(
            "SELECT id, kind, document_id, from_cabinet_id, to_cabinet_id, at, actor_id,"
            " actor_email FROM document_transfers WHERE document_id = :document_id ORDER BY id",
            {"document_id": document_id})
        return [Transfer(**{**row, "kind": DocumentKind(row["kind"])}) for row in rows]


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

    async def get_by_version(self, product_id: str, version: str) -> Release | None:
        rows = await self._db.fetch_all(
            f"SELECT {_RELEASE_COLUMNS} FROM releases"
            " WHERE product_id = :product_id AND version = :version",
            {"product_id": product_id, "version": version})
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


class SqlPurchaseEvents:
    def __init__(self, db: SqlSession) -> None:
        self._db = db

    async def claim(self, event_id: str, type_: str, occurred_at: datetime,
                    received_at: datetime) -> bool:
        # The unique key makes a concurrent insert of the same id wait for the first one.
        inserted = await self._db.execute(
            "INSERT INTO purchase_events (event_id, type, occurred_at, received_at)"
            " VALUES (:event_id, :type, :occurred_at, :received_at)"
            " ON CONFLICT (event_id) DO NOTHING",
            {"event_id": event_id, "type": type_, "occurred_at": occurred_at,
             "received_at": received_at})
        return inserted == 1

    async def record_outcome(self, event_id: str, outcome: dict[str, Any]) -> None:
        await self._db.execute(
            "UPDATE purchase_events SET outcome = :outcome WHERE event_id = :event_id",
            {"event_id": event_id, "outcome": outcome})

    async def outcome(self, event_id: str) -> dict[str, Any] | None:
        row = await self._db.fetch_one(
            "SELECT outcome FROM purchase_events WHERE event_id = :event_id",
            {"event_id": event_id})
        return row["outcome"] if row else None


_USER_COLUMNS = ("u.id, u.email, u.email_key, u.name, u.role, u.cabinet_id, u.active,"
                 " u.password_hash, u.created_at, u.updated_at, u.deleted_at")


def _user(row: Row) -> User:
    return User(id=row["id"], email=row["email"], email_key=row["email_key"], name=row["name"],
                role=Role(row["role"]), cabinet_id=row["cabinet_id"], active=row["active"],
                password_hash=row["password_hash"], created_at=row["created_at"],
                updated_at=row["updated_at"], deleted_at=row["deleted_at"])


class SqlUsers:
    def __init__(self, db: SqlSession) -> None:
        self._db = db

    async def add(self, user: User) -> None:
        await self._db.execute(
            "INSERT INTO users (id, email, email_key, name, role, cabinet_id, active,"
            " password_hash, created_at, updated_at, deleted_at) VALUES (:id, :email,"
            " :email_key, :name, :role, :cabinet_id, :active, :password_hash, :created_at,"
            " :updated_at, :deleted_at)",
            {**vars(user), "role": user.role.value},
        )

    async def get(self, user_id: str, scope: Scope, *, for_update: bool = False) -> User | None:
        in_scope, scope_params = scope_filter(scope, "c.path")
        # Only the user's row is locked: PostgreSQL refuses FOR UPDATE across a join's
        # nullable side, and the cabinet is not changed here.
        lock = f"{self._db.for_update} OF u" if for_update and self._db.for_update else ""
        row = await self._db.fetch_one(
            f"SELECT {_USER_COLUMNS} FROM users u JOIN cabinets c ON c.id = u.cabinet_id"
            f" WHERE u.id = :id AND u.deleted_at IS NULL AND {in_scope}{lock}",
            {"id": user_id, **scope_params},
        )
        return _user(row) if row else None

    async def get_by_email_key(self, key: str) -> User | None:
        row = await self._db.fetch_one(
            f"SELECT {_USER_COLUMNS} FROM users u"
            " WHERE u.email_key = :key AND u.deleted_at IS NULL", {"key": key})
        return _user(row) if row else None

    async def list_in_cabinet(self, cabinet_id: str, scope: Scope,
                              page: PageRequest) -> list[User]:
        in_scope, scope_params = scope_filter(scope, "c.path")
        after, page_params = page_filter(page, "u.id")
        rows = await self._db.fetch_all(
            f"SELECT {_USER_COLUMNS} FROM users u JOIN cabinets c ON c.id = u.cabinet_id"
            f" WHERE u.cabinet_id = :cabinet_id AND u.deleted_at IS NULL AND {in_scope}"
            f" AND {after} ORDER BY u.id LIMIT :page_limit",
            {"cabinet_id": cabinet_id, **scope_params, **page_params},
        )
        return [_user(row) for row in rows]

    async def update(self, user: User) -> None:
        await self._db.execute(
            "UPDATE users SET email_key = :email_key, name = :name, role = :role,"
            " active = :active, password_hash = :password_hash, updated_at = :updated_at,"
            " deleted_at = :deleted_at WHERE id = :id",
            {"id": user.id, "email_key": user.email_key, "name": user.name,
             "role": user.role.value, "active": user.active, "password_hash": user.password_hash,
             "updated_at": user.updated_at, "deleted_at": user.deleted_at},
        )


class SqlSessions:
    def __init__(self, db: SqlSession) -> None:
        self._db = db

    async def add(self, session: LoginSession) -> None:
        await self._db.execute(
            "INSERT INTO login_sessions (id, user_id, created_at, expires_at, revoked_at)"
            " VALUES (:id, :user_id, :created_at, :expires_at, :revoked_at)", vars(session))

    async def get(self, session_id: str) -> LoginSession | None:
        row = await self._db.fetch_one(
            "SELECT id, user_id, created_at, expires_at, revoked_at FROM login_sessions"
            " WHERE id = :id", {"id": session_id})
        return LoginSession(**row) if row else None

    async def revoke(self, session_id: str, at: datetime) -> None:
        await self._db.execute(
            "UPDATE login_sessions SET revoked_at = :at WHERE id = :id AND revoked_at IS NULL",
            {"id": session_id, "at": at})

    async def revoke_all_of_user(self, user_id: str, at: datetime) -> None:
        await self._db.execute(
            "UPDATE login_sessions SET revoked_at = :at"
            " WHERE user_id = :user_id AND revoked_at IS NULL", {"user_id": user_id, "at": at})

    async def add_refresh_token(self, jti: str, session_id: str, expires_at: datetime) -> None:
        await self._db.execute(
            "INSERT INTO refresh_tokens (jti, session_id, expires_at) VALUES (:jti, :session_id,"
            " :expires_at)", {"jti": jti, "session_id": session_id, "expires_at": expires_at})

    async def use_refresh_token(self, jti: str, session_id: str, at: datetime) -> bool:
        touched = await self._db.execute(
            "UPDATE refresh_tokens SET used_at = :at"
            " WHERE jti = :jti AND session_id = :session_id AND used_at IS NULL",
            {"jti": jti, "session_id": session_id, "at": at})
        return touched == 1

    async def refresh_token_used_at(self, jti: str, session_id: str) -> datetime | None:
        row = await self._db.fetch_one(
            "SELECT used_at FROM refresh_tokens WHERE jti = :jti AND session_id = :session_id",
            {"jti": jti, "session_id": session_id})
        return row["used_at"] if row else None

    async def add_password_token(self, token_hash: str, user_id: str,
                                 expires_at: datetime) -> None:
        await self._db.execute(
            "INSERT INTO password_tokens (token_hash, user_id, expires_at) VALUES (:token_hash,"
            " :user_id, :expires_at)",
            {"token_hash": token_hash, "user_id": user_id, "expires_at": expires_at})

    async def password_token_user(self, token_hash: str, at: datetime) -> str | None:
        row = await self._db.fetch_one(
            "SELECT user_id FROM password_tokens WHERE token_hash = :token_hash"
            " AND used_at IS NULL AND expires_at > :at", {"token_hash": token_hash, "at": at})
        return str(row["user_id"]) if row else None

    async def use_password_token(self, token_hash: str, at: datetime) -> str | None:
        row = await self._db.fetch_one(
            "UPDATE password_tokens SET used_at = :at WHERE token_hash = :token_hash"
            " AND used_at IS NULL AND expires_at > :at RETURNING user_id",
            {"token_hash": token_hash, "at": at})
        return str(row["user_id"]) if row else None


class SqlAudit:
    def __init__(self, db: SqlSession) -> None:
        self._db = db

    async def add(self, entry: AuditEntry) -> None:
        await self._db.execute(
            "INSERT INTO audit_log (id, at, action, actor_id, actor_email, object_type,"
            " object_id, cabinet_id, address, details) VALUES (:id, :at, :action, :actor_id,"
            " :actor_email, :object_type, :object_id, :cabinet_id, :address, :details)",
            vars(entry))

    async def list_visible(self, scope: Scope, page: PageRequest,
                           object_id: str | None = None,
                           action: str | None = None) -> list[AuditEntry]:
        in_scope, scope_params = scope_filter(scope, "c.path")
        after, page_params = page_filter(page, "a.id")
        about = "a.object_id = :object_id" if object_id else "1 = 1"
        if action:
            about += " AND a.action = :action"
        rows = await self._db.fetch_all(
            "SELECT a.id, a.at, a.action, a.actor_id, a.actor_email, a.object_type, a.object_id,"
            " a.cabinet_id, a.address, a.details FROM audit_log a"
            " LEFT JOIN cabinets c ON c.id = a.cabinet_id"
            f" WHERE {in_scope} AND {after} AND {about} ORDER BY a.id LIMIT :page_limit",
            {**scope_params, **page_params, "object_id": object_id, "action": action},
        )
        return [AuditEntry(**row) for row in rows]


_NOTIFICATION_COLUMNS = "id, user_id, seq, kind, title, body, link, created_at, read_at"


# No bound on positions (a BIGINT's greatest value).
_NO_BOUND = 2 ** 63 - 1
_BATCH_COLUMNS = "position, id, kind, title, body, link, created_at, users, audience"


def _batch(row: Row) -> Batch:
    return Batch(position=int(row["position"]), id=row["id"],
                 message=Message(NotificationKind(row["kind"]), row["title"], row["body"],
                                 row["link"]),
                 created_at=row["created_at"], users=tuple(json.loads(row["users"])),
                 audience=tuple(json.loads(row["audience"])))


def _notification(row: Row) -> Notification:
    return Notification(id=row["id"], user_id=row["user_id"], seq=int(row["seq"]),
                        kind=NotificationKind(row["kind"]), title=row["title"],
                        body=row["body"], link=row["link"], created_at=row["created_at"],
                        read_at=row["read_at"])


class SqlNotifications:
    def __init__(self, db: SqlSession) -> None:
        self._db = db

    async def next_position(self) -> int:
        # The counter's row stays locked until this transaction ends: whoever takes the
        # next number waits, so numbers are committed in the order they are taken.
        row = await self._db.fetch_one(
            "UPDATE notification_clock SET position = position + 1 WHERE id = 1"
            " RETURNING position")
        assert row is not None, "migration 0011 makes the counter's row"
        return int(row["position"])

    async def position(self) -> int:
        row = await self._db.fetch_one("SELECT position FROM notification_clock WHERE id = 1")
        return int(row["position"]) if row else 0

    async def add(self, user_ids: list[str], message: Message, ids: list[str],
                  at: datetime) -> list[Notification]:
        position = await self.next_position()
        made = [Notification(id=notification_id, user_id=user_id, seq=position,
                             kind=message.kind, title=message.title, body=message.body,
                             link=message.link, created_at=at)
                for user_id, notification_id in dict(zip(user_ids, ids, strict=True)).items()]
        await self._insert(made, message, position, at)
        return made

    async def write(self, batch: Batch) -> None:
        for start in range(0, len(batch.users), BATCH_ROWS):
            await self._insert([batch.notification(user_id)
                                for user_id in batch.users[start:start + BATCH_ROWS]],
                               batch.message, batch.position, batch.created_at)

    async def _insert(self, made: list[Notification], message: Message, position: int,
                      at: datetime) -> None:
        for start in range(0, len(made), BATCH_ROWS):
            chunk = made[start:start + BATCH_ROWS]
            # What differs per row travels per row; the message once.
            values = ", ".join(f"(:id{i}, :user{i})" for i in range(len(chunk)))
            params: dict[str, Any] = {"seq": position, "kind": message.kind.value,
                                      "title": message.title, "body": message.body,
                                      "link": message.link, "at": at}
            for i, n in enumerate(chunk):
                params.update({f"id{i}": n.id, f"user{i}": n.user_id})
            await self._db.execute(
                "INSERT INTO notifications (id, user_id, seq, kind, title, body, link,"
                " created_at) SELECT v.column1, v.column2, :seq, :kind, :title, :body,"
                f" :link, :at FROM (VALUES {values}) AS v", params)

    async def hold(self, batch: Batch) -> None:
        m = batch.message
        await self._db.execute(
            "INSERT INTO notification_batches (position, id, kind, title, body, link,"
            " created_at, users, audience) VALUES (:position, :id, :kind, :title, :body,"
            " :link, :at, :users, :audience)",
            {"position": batch.position, "id": batch.id, "kind": m.kind.value,
             "title": m.title, "body": m.body, "link": m.link, "at": batch.created_at,
             "users": json.dumps(batch.users), "audience": json.dumps(batch.audience)})

    async def held(self, limit: int) -> list[Batch]:
        rows = await self._db.fetch_all(
            f"SELECT {_BATCH_COLUMNS} FROM notification_batches ORDER BY position"
            f" LIMIT :limit{self._db.for_update}", {"limit": limit})
        return [_batch(row) for row in rows]

    async def waiting_for(self, user_id: str, up_to: int) -> list[Batch]:
        # The users' list is searched where it is, not sent here and parsed for each reader.
        pattern = json.dumps(user_id).replace("\\", "\\\\").replace("%", "\\%").replace(
            "_", "\\_")
        rows = await self._db.fetch_all(
            "SELECT position, id, kind, title, body, link, created_at FROM"
            " notification_batches WHERE position <= :up_to AND users LIKE :pattern"
            " ESCAPE '\\' ORDER BY position", {"up_to": up_to, "pattern": f"%{pattern}%"})
        return [_batch({**row, "users": json.dumps([user_id]), "audience": "[]"})
                for row in rows]

    async def waiting(self, up_to: int) -> list[Batch]:
        rows = await self._db.fetch_all(
            f"SELECT {_BATCH_COLUMNS} FROM notification_batches WHERE position <= :up_to"
            " ORDER BY position", {"up_to": up_to})
        return [_batch(row) for row in rows]

    async def release(self, position: int) -> None:
        await self._db.execute("DELETE FROM notification_batches WHERE position = :position",
                               {"position": position})

    async def since(self, position: int, up_to: int, user_ids: list[str],
                    limit: int) -> list[Notification]:
        found: list[Notification] = []
        for start in range(0, len(user_ids), BATCH_ROWS):
            listed, names = in_list("u", user_ids[start:start + BATCH_ROWS])
            rows = await self._db.fetch_all(
                f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications WHERE seq >= :position"
                f" AND seq <= :up_to AND user_id IN ({listed}) ORDER BY seq LIMIT :limit",
                {**names, "position": position, "up_to": up_to, "limit": limit - len(found)})
            found += [_notification(row) for row in rows]
            if len(found) >= limit:
                break
        return sorted(found, key=lambda n: (n.seq, n.user_id))

    async def list_for_user(self, user_id: str, page: PageRequest, unread_only: bool = False,
                            up_to: int = _NO_BOUND, below: int | None = None
                            ) -> list[Notification]:
        after = "1 = 1" if page.after is None else (
            "seq < (SELECT seq FROM notifications WHERE id = :after AND user_id = :user_id)")
        unread = " AND read_at IS NULL" if unread_only else ""
        lower = "" if below is None else " AND seq < :below"
        rows = await self._db.fetch_all(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications WHERE user_id = :user_id"
            f" AND {after}{unread}{lower} AND seq <= :up_to ORDER BY seq DESC LIMIT :limit",
            {"user_id": user_id, "after": page.after, "limit": page.limit + 1,
             "up_to": up_to, "below": below})
        return [_notification(row) for row in rows]

    async def position_of(self, user_id: str, notification_id: str) -> int | None:
        row = await self._db.fetch_one(
            "SELECT seq FROM notifications WHERE id = :id AND user_id = :user_id",
            {"id": notification_id, "user_id": user_id})
        return int(row["seq"]) if row else None

    async def after(self, user_id: str, seq: int, limit: int,
                    up_to: int = _NO_BOUND) -> list[Notification]:
        rows = await self._db.fetch_all(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications WHERE user_id = :user_id"
            " AND seq > :seq AND seq <= :up_to ORDER BY seq LIMIT :limit",
            {"user_id": user_id, "seq": seq, "limit": limit, "up_to": up_to})
        return [_notification(row) for row in rows]

    async def unread_count(self, user_id: str, up_to: int = _NO_BOUND,
                           excluding: tuple[int, ...] = ()) -> int:
        listed, names = in_list("x", list(excluding))
        others = f" AND seq NOT IN ({listed})" if excluding else ""
        row = await self._db.fetch_one(
            "SELECT COUNT(*) AS n FROM notifications WHERE user_id = :user_id"
            f" AND read_at IS NULL AND seq <= :up_to{others}",
            {**names, "user_id": user_id, "up_to": up_to})
        return int(row["n"]) if row else 0

    async def set_read(self, user_id: str, notification_id: str,
                       at: datetime | None) -> Notification | None:
        row = await self._db.fetch_one(
            "UPDATE notifications SET read_at = :at WHERE id = :id AND user_id = :user_id"
            f" RETURNING {_NOTIFICATION_COLUMNS}",
            {"id": notification_id, "user_id": user_id, "at": at})
        return _notification(row) if row else None

    async def read_all(self, user_id: str, at: datetime) -> int:
        return await self._db.execute(
            "UPDATE notifications SET read_at = :at WHERE user_id = :user_id"
            " AND read_at IS NULL", {"user_id": user_id, "at": at})

    async def delete(self, user_id: str, notification_id: str) -> bool:
        return await self._db.execute(
            "DELETE FROM notifications WHERE id = :id AND user_id = :user_id",
            {"id": notification_id, "user_id": user_id}) == 1

    async def preferences(self, user_id: str) -> dict[NotificationKind, Preference]:
        rows = await self._db.fetch_all(
            "SELECT kind, in_app, email FROM notification_settings WHERE user_id = :user_id",
            {"user_id": user_id})
        return {NotificationKind(row["kind"]): Preference(bool(row["in_app"]),
                                                          bool(row["email"]))
                for row in rows if row["kind"] in NotificationKind._value2member_map_}

    async def set_preferences(self, user_id: str,
                              chosen: dict[NotificationKind, Preference]) -> None:
        for kind, preference in sorted(chosen.items()):
            await self._db.execute(
                "INSERT INTO notification_settings (user_id, kind, in_app, email)"
                " VALUES (:user_id, :kind, :in_app, :email) ON CONFLICT (user_id, kind)"
                " DO UPDATE SET in_app = excluded.in_app, email = excluded.email",
                {"user_id": user_id, "kind": kind.value, "in_app": preference.in_app,
                 "email": preference.email})

    async def muted(self, kind: NotificationKind) -> set[str]:
        rows = await self._db.fetch_all(
            "SELECT user_id FROM notification_settings WHERE kind = :kind AND NOT in_app",
            {"kind": kind.value})
        return {str(row["user_id"]) for row in rows}

    async def recipients_in(self, cabinet_ids: list[str]) -> list[str]:
        if not cabinet_ids:
            return []
        listed, names = in_list("c", cabinet_ids)
        rows = await self._db.fetch_all(
            "SELECT id FROM users WHERE active AND deleted_at IS NULL"
            f" AND cabinet_id IN ({listed}) ORDER BY id", names)
        return [str(row["id"]) for row in rows]

    async def recipients_licensed(self, product_id: str, on: date, today: date) -> list[str]:
        rows = await self._db.fetch_all(
            "SELECT u.id FROM users u WHERE u.active AND u.deleted_at IS NULL AND EXISTS ("
            " SELECT 1 FROM licenses l WHERE l.cabinet_id = u.cabinet_id"
            " AND l.product_id = :product_id AND l.revoked_at IS NULL AND ("
            " (l.valid_from <= :on AND (l.valid_to IS NULL OR l.valid_to >= :on)) OR"
            " (l.valid_from <= :today AND (l.valid_to IS NULL OR l.valid_to >= :today))))"
            " ORDER BY u.id", {"product_id": product_id, "on": on, "today": today})
        return [str(row["id"]) for row in rows]

    async def mail_targets(self, user_ids: list[str],
                           kind: NotificationKind) -> list[tuple[str, str, str]]:
        found: list[tuple[str, str, str]] = []
        for start in range(0, len(user_ids), BATCH_ROWS):  # SQLite's parameter limit
            listed, names = in_list("u", user_ids[start:start + BATCH_ROWS])
            rows = await self._db.fetch_all(
                "SELECT u.id, u.email, u.name FROM users u WHERE u.active"
                f" AND u.deleted_at IS NULL AND u.id IN ({listed}) AND NOT EXISTS ("
                " SELECT 1 FROM notification_settings s WHERE s.user_id = u.id"
                " AND s.kind = :kind AND NOT s.email)", {**names, "kind": kind.value})
            found += [(str(row["id"]), str(row["email"]), str(row["name"])) for row in rows]
        return sorted(found)

    async def recipients_all(self) -> list[str]:
        rows = await self._db.fetch_all(
            "SELECT id FROM users WHERE active AND deleted_at IS NULL ORDER BY id")
        return [str(row["id"]) for row in rows]


_OUTBOX_COLUMNS = ("id, message_id, recipient, subject, text_body, html_body, created_at,"
                   " status, attempts, next_attempt_at, last_error, sent_at")
# A row's own text, or the shared one it points at.
_OUTBOX_SELECT = (
    "SELECT o.id, o.message_id, o.recipient, o.subject,"
    " COALESCE(b.text_body, o.text_body) AS text_body,"
    " CASE WHEN o.body_id IS NULL THEN o.html_body ELSE b.html_body END AS html_body,"
    " o.created_at, o.status, o.attempts, o.next_attempt_at, o.last_error, o.sent_at"
    " FROM outbox o LEFT JOIN mail_bodies b ON b.id = o.body_id")


# Done with, a message keeps who, what subject and when, not its text: an invitation's holds
# a set-password link that the database otherwise keeps only as a hash.
_FORGET_TEXT = " text_body = '', html_body = NULL, body_id = NULL"


def _outbox(row: Row) -> OutboxMessage:
    return OutboxMessage(
        id=row["id"], message_id=row["message_id"], recipient=row["recipient"],
        subject=row["subject"], text_body=row["text_body"], html_body=row["html_body"],
        created_at=row["created_at"], status=OutboxStatus(row["status"]),
        attempts=int(row["attempts"]), next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"], sent_at=row["sent_at"])


class SqlOutbox:
    def __init__(self, db: SqlSession) -> None:
        self._db = db

    async def add(self, *messages: OutboxMessage) -> None:
        # Messages that differ only in their recipient (one notification to many users)
        # are written as one statement a chunk: each row its id, Message-ID and recipient,
        # the rest once, and their text once, in mail_bodies.
        groups: dict[tuple[Any, ...], list[OutboxMessage]] = defaultdict(list)
        for m in messages:
            groups[(m.subject, m.text_body, m.html_body, m.created_at, m.status,
                    m.attempts, m.next_attempt_at or m.created_at, m.last_error,
                    m.sent_at)].append(m)
        for shape, group in groups.items():
            if len(group) == 1:
                await self._add_alone(group[0])
                continue
            subject, text, html, created_at, status, attempts, due, error, sent_at = shape
            body_id = hashlib.sha256(f"{text}\0{html}".encode()).hexdigest()
            await self._db.execute(
                "INSERT INTO mail_bodies (id, text_body, html_body) VALUES (:id, :text, :html)"
                " ON CONFLICT (id) DO NOTHING", {"id": body_id, "text": text, "html": html})
            for start in range(0, len(group), BATCH_ROWS):
                chunk = group[start:start + BATCH_ROWS]
                listed = ", ".join(f"(:id{i}, :mid{i}, :to{i})" for i in range(len(chunk)))
                params: dict[str, Any] = {
                    "subject": subject, "body_id": body_id, "created_at": created_at,
                    "status": status.value, "attempts": attempts, "due": due,
                    "error": error, "sent_at": sent_at}
                for i, m in enumerate(chunk):
                    params.update({f"id{i}": m.id, f"mid{i}": m.message_id,
                                   f"to{i}": m.recipient})
                await self._db.execute(
                    f"INSERT INTO outbox ({_OUTBOX_COLUMNS}, body_id) SELECT v.column1,"
                    " v.column2, v.column3, :subject, '', NULL, :created_at, :status, :attempts,"
                    f" :due, :error, :sent_at, :body_id FROM (VALUES {listed}) AS v"
                    # WHERE: SQLite would read the ON of ON CONFLICT as a join's.
                    " WHERE 1 = 1 ON CONFLICT (message_id) DO NOTHING", params)

    async def _add_alone(self, message: OutboxMessage) -> None:
        await insert_rows(self._db, "outbox", _OUTBOX_COLUMNS, [{
            **vars(message), "status": message.status.value,
            "next_attempt_at": message.next_attempt_at or message.created_at}],
            " ON CONFLICT (message_id) DO NOTHING")

    async def claim(self, now: datetime, lease_until: datetime,
                    limit: int) -> list[OutboxMessage]:
        # PostgreSQL: rows another worker holds are skipped, not waited for. SQLite: a
        # write transaction excludes every other writer already.
        skip = " FOR UPDATE OF o SKIP LOCKED" if self._db.dialect == "postgres" else ""
        rows = await self._db.fetch_all(
            f"{_OUTBOX_SELECT} WHERE o.status = 'pending' AND o.next_attempt_at <= :now"
            " AND (o.locked_until IS NULL OR o.locked_until <= :now)"
            f" ORDER BY o.next_attempt_at, o.id LIMIT :limit{skip}",
            {"now": now, "limit": limit})
        for row in rows:
            await self._db.execute(
                "UPDATE outbox SET locked_until = :until WHERE id = :id",
                {"until": lease_until, "id": row["id"]})
        return [_outbox(row) for row in rows]

    async def mark_sent(self, message_id: str, at: datetime) -> None:
        await self._db.execute(
            "UPDATE outbox SET status = 'sent', sent_at = :at, attempts = attempts + 1,"
            f" locked_until = NULL, last_error = NULL,{_FORGET_TEXT}"
            " WHERE message_id = :message_id",
            {"message_id": message_id, "at": at})

    async def retry_later(self, message_id: str, attempts: int, at: datetime,
                          error: str) -> None:
        await self._db.execute(
            "UPDATE outbox SET attempts = :attempts, next_attempt_at = :at,"
            " locked_until = NULL, last_error = :error WHERE message_id = :message_id",
            {"message_id": message_id, "attempts": attempts, "at": at, "error": error[:1000]})

    async def mark_failed(self, message_id: str, attempts: int, error: str) -> None:
        await self._db.execute(
            "UPDATE outbox SET status = 'failed', attempts = :attempts, locked_until = NULL,"
            f" last_error = :error,{_FORGET_TEXT} WHERE message_id = :message_id",
            {"message_id": message_id, "attempts": attempts, "error": error[:1000]})

    async def get(self, message_id: str) -> OutboxMessage | None:
        row = await self._db.fetch_one(
            f"{_OUTBOX_SELECT} WHERE o.message_id = :message_id",
            {"message_id": message_id})
        return _outbox(row) if row else None

    async def list_recent(self, limit: int, recipient: str = "") -> list[OutboxMessage]:
        where = " WHERE LOWER(o.recipient) LIKE :recipient ESCAPE '!'" if recipient else ""
        pattern = "%" + "".join("!" + c if c in "!%_" else c for c in recipient.lower()) + "%"
        rows = await self._db.fetch_all(
            f"{_OUTBOX_SELECT}{where} ORDER BY o.created_at DESC, o.id DESC"
            " LIMIT :limit", {"limit": limit, "recipient": pattern})
        return [_outbox(row) for row in rows]


class SqlLoginThrottle:
    def __init__(self, db: SqlSession) -> None:
        self._db = db

    async def hit(self, key: str, now: datetime, expired: datetime) -> tuple[int, datetime]:
        # One statement: the row lock of the upsert makes concurrent attempts count one by one.
        row = await self._db.fetch_one(
            "INSERT INTO login_throttle (key, window_start, attempts) VALUES (:key, :now, 1)"
            " ON CONFLICT (key) DO UPDATE SET"
            " attempts = CASE WHEN login_throttle.window_start <= :expired THEN 1"
            " ELSE login_throttle.attempts + 1 END,"
            " window_start = CASE WHEN login_throttle.window_start <= :expired THEN :now"
            " ELSE login_throttle.window_start END"
            " RETURNING attempts, window_start",
            {"key": key, "now": now, "expired": expired})
        assert row is not None  # an upsert with RETURNING always returns its row
        return int(row["attempts"]), row["window_start"]

    async def forgive(self, key: str) -> None:
        await self._db.execute(
            "UPDATE login_throttle SET attempts = attempts - 1 WHERE key = :key AND attempts > 0",
            {"key": key})

    async def reset(self, key: str) -> None:
        await self._db.execute("DELETE FROM login_throttle WHERE key = :key", {"key": key})

    async def prune(self, before: datetime) -> None:
        await self._db.execute("DELETE FROM login_throttle WHERE window_start < :before",
                               {"before": before})


class SqlReminders:
    def __init__(self, db: SqlSession) -> None:
        self._db = db

    async def due(self, kind: DocumentKind, stage: int, first: date, last: date,
                  limit: int) -> list[DueDocument]:
        table = "licenses" if kind is DocumentKind.LICENSE else "certificates"
        rows = await self._db.fetch_all(
            f"SELECT d.id, d.number, d.cabinet_id, d.valid_to, c.name AS cabinet_name,"
            f" p.name AS product_name FROM {table} d"
            " JOIN cabinets c ON c.id = d.cabinet_id JOIN products p ON p.id = d.product_id"
            " WHERE d.valid_to >= :first AND d.valid_to <= :last AND d.revoked_at IS NULL"
            " AND NOT EXISTS (SELECT 1 FROM expiry_reminders r WHERE r.document_id = d.id"
            " AND r.valid_to = d.valid_to AND r.stage <= :stage)"
            " ORDER BY d.valid_to, d.id LIMIT :limit",
            {"first": first, "last": last, "stage": stage, "limit": limit})
        return [DueDocument(kind=kind, id=str(row["id"]), number=str(row["number"]),
                            cabinet_id=str(row["cabinet_id"]),
                            cabinet_name=str(row["cabinet_name"]),
                            product_name=str(row["product_name"]), valid_to=row["valid_to"])
                for row in rows]

    async def mark(self, document: DueDocument, stage: int, at: datetime) -> bool:
        return await self._db.execute(
            "INSERT INTO expiry_reminders (document_id, kind, valid_to, stage, sent_at)"
            " VALUES (:id, :kind, :valid_to, :stage, :at)"
            " ON CONFLICT (document_id, valid_to, stage) DO NOTHING",
            {"id": document.id, "kind": document.kind.value, "valid_to": document.valid_to,
             "stage": stage, "at": at}) == 1

    async def recipients(self, cabinet_id: str) -> list[str]:
        rows = await self._db.fetch_all(
            "SELECT u.id FROM users u JOIN cabinets home ON home.id = u.cabinet_id"
            " JOIN cabinets owner ON owner.id = :cabinet_id"
            " WHERE u.active AND u.deleted_at IS NULL AND (u.cabinet_id = owner.id"
            " OR (u.role = :admin AND home.kind = :customer"
            " AND owner.path LIKE home.path || '%')) ORDER BY u.id",
            {"cabinet_id": cabinet_id, "admin": Role.CUSTOMER_ADMIN.value,
             "customer": CabinetKind.CUSTOMER.value})
        return [str(row["id"]) for row in rows]


class SqlUnitOfWork:
    """Repositories over one transaction; the adapter's context manager owns begin/rollback."""

    def __init__(self, db: SqlSession, events: EventLog | None = None) -> None:
        self.cabinets = SqlCabinets(db)
        self.products = SqlProducts(db)
        self.licenses = SqlLicenses(db)
        self.certificates = SqlCertificates(db)
        self.transfers = SqlTransfers(db)
        self.purchases = SqlPurchaseEvents(db)
        self.releases = SqlReleases(db)
        self.notifications = SqlNotifications(db)
        self.outbox = SqlOutbox(db)
        self.reminders = SqlReminders(db)
        self.users = SqlUsers(db)
        self.sessions = SqlSessions(db)
        self.audit = SqlAudit(db)
        self.login_throttle = SqlLoginThrottle(db)
        self.events = events or EventLog()
        self._db = db

    async def try_lock(self, name: str) -> bool:
        if self._db.dialect != "postgres":
            return True  # SQLite lets one writer in at a time, and serves one process
        row = await self._db.fetch_one("SELECT pg_try_advisory_xact_lock(:key) AS locked",
                                       {"key": zlib.crc32(name.encode())})
        return bool(row and row["locked"])

    async def commit(self) -> None:
        await self.events.commit(self, self._commit)

    async def _commit(self) -> None:
        await self._db.execute("COMMIT")
        await self._db.execute("BEGIN")
