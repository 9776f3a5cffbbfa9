"""Users, their login sessions and tokens, and sign-in throttling in SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapters.sql.cabinets import CABINET_COLUMNS, cabinet_of
from adapters.sql.session import Row, SqlSession
from adapters.sql.statements import Joined, contains, nulls_last, paged, scope_filter
from app.domain.access import Scope
from app.domain.cabinets import Cabinet
from app.domain.paging import PageRequest
from app.domain.roles import Role
from app.domain.sessions import LoginSession
from app.domain.users import User

_USER_COLUMNS = ("u.id, u.email, u.email_key, u.name, u.role, u.cabinet_id, u.active,"
                 " u.password_hash, u.created_at, u.updated_at, u.deleted_at, u.last_sign_in_at")

_CABINET_BESIDE = Joined(CABINET_COLUMNS, "c")
_USER_SORTS = {"name": ("LOWER(u.name)",), "email": ("u.email_key",), "role": ("u.role",),
               "last_sign_in": nulls_last("u.last_sign_in_at")}


def _in_cabinet(cabinet_id: str, scope: Scope, search: str) -> tuple[str, dict[str, Any]]:
    in_scope, params = scope_filter(scope, "c.path")
    where = f"u.cabinet_id = :cabinet_id AND u.deleted_at IS NULL AND {in_scope}"
    if search.strip():
        where += (" AND (LOWER(u.name) LIKE :search ESCAPE '!'"
                  " OR u.email_key LIKE :search ESCAPE '!')")
    return where, {**params, "cabinet_id": cabinet_id, "search": contains(search)}


def _user(row: Row) -> User:
    return User(id=row["id"], email=row["email"], email_key=row["email_key"], name=row["name"],
                role=Role(row["role"]), cabinet_id=row["cabinet_id"], active=row["active"],
                password_hash=row["password_hash"], created_at=row["created_at"],
                updated_at=row["updated_at"], deleted_at=row["deleted_at"],
                last_sign_in_at=row["last_sign_in_at"])


class SqlUsers:
    def __init__(self, db: SqlSession) -> None:
        self._db = db

    async def add(self, user: User) -> None:
        await self._db.execute(
            "INSERT INTO users (id, email, email_key, name, role, cabinet_id, active,"
            " password_hash, created_at, updated_at, deleted_at, last_sign_in_at) VALUES (:id,"
            " :email, :email_key, :name, :role, :cabinet_id, :active, :password_hash,"
            " :created_at, :updated_at, :deleted_at, :last_sign_in_at)",
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

    async def list_in_cabinet(self, cabinet_id: str, scope: Scope, page: PageRequest,
                              search: str = "") -> list[User]:
        where, params = _in_cabinet(cabinet_id, scope, search)
        after, order, page_params = paged(page, "u.id", _USER_SORTS)
        rows = await self._db.fetch_all(
            f"SELECT {_USER_COLUMNS} FROM users u JOIN cabinets c ON c.id = u.cabinet_id"
            f" WHERE {where} AND {after}{order}", {**params, **page_params})
        return [_user(row) for row in rows]

    async def count_in_cabinet(self, cabinet_id: str, scope: Scope, search: str = "") -> int:
        where, params = _in_cabinet(cabinet_id, scope, search)
        row = await self._db.fetch_one(
            "SELECT COUNT(*) AS n FROM users u JOIN cabinets c ON c.id = u.cabinet_id"
            f" WHERE {where}", params)
        return int(row["n"]) if row else 0

    async def update(self, user: User) -> None:
        await self._db.execute(
            "UPDATE users SET email_key = :email_key, name = :name, role = :role,"
            " active = :active, password_hash = :password_hash, updated_at = :updated_at,"
            " deleted_at = :deleted_at WHERE id = :id",
            {"id": user.id, "email_key": user.email_key, "name": user.name,
             "role": user.role.value, "active": user.active, "password_hash": user.password_hash,
             "updated_at": user.updated_at, "deleted_at": user.deleted_at},
        )

    async def mark_signed_in(self, user_id: str, at: datetime) -> None:
        await self._db.execute("UPDATE users SET last_sign_in_at = :at WHERE id = :id",
                               {"id": user_id, "at": at})


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

    async def signed_in(self, session_id: str, user_id: str
                        ) -> tuple[LoginSession, User, Cabinet] | None:
        # The user's and the cabinet's columns keep their names: each half is read apart.
        row = await self._db.fetch_one(
            f"SELECT s.created_at AS s_created_at, s.expires_at AS s_expires_at,"
            f" s.revoked_at AS s_revoked_at, {_USER_COLUMNS}, {_CABINET_BESIDE.select}"
            " FROM login_sessions s JOIN users u ON u.id = s.user_id"
            " JOIN cabinets c ON c.id = u.cabinet_id"
            " WHERE s.id = :id AND u.id = :user_id AND u.deleted_at IS NULL",
            {"id": session_id, "user_id": user_id})
        if row is None:
            return None
        session = LoginSession(id=session_id, user_id=user_id, created_at=row["s_created_at"],
                               expires_at=row["s_expires_at"], revoked_at=row["s_revoked_at"])
        return session, _user(row), cabinet_of(_CABINET_BESIDE.of(row))

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

    async def add_password_token(self, token_hash: str, user_id: str, expires_at: datetime,
                                 created_at: datetime) -> None:
        await self._db.execute(
            "INSERT INTO password_tokens (token_hash, user_id, expires_at, created_at) VALUES"
            " (:token_hash, :user_id, :expires_at, :created_at)",
            {"token_hash": token_hash, "user_id": user_id, "expires_at": expires_at,
             "created_at": created_at})

    async def password_links_since(self, user_id: str, since: datetime) -> int:
        row = await self._db.fetch_one(
            "SELECT COUNT(*) AS made FROM password_tokens WHERE user_id = :user_id"
            " AND created_at >= :since", {"user_id": user_id, "since": since})
        return int(row["made"]) if row else 0

    async def drop_password_tokens(self, user_id: str) -> None:
        await self._db.execute(
            "DELETE FROM password_tokens WHERE user_id = :user_id AND used_at IS NULL",
            {"user_id": user_id})

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
