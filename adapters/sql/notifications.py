"""Notifications in SQL: positions, held batches, read marks and preferences."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from adapters.sql.session import Row, SqlSession
from adapters.sql.statements import BATCH_ROWS, in_list
from app.domain.notifications import (
    Batch,
    Message,
    Notification,
    NotificationKind,
    Preference,
)
from app.domain.paging import PageRequest
from app.domain.roles import Role

_NOTIFICATION_COLUMNS = "id, user_id, seq, kind, title, body, link, created_at, read_at"


# No bound on positions (a BIGINT's greatest value).
_NO_BOUND = 2 ** 63 - 1
_BATCH_COLUMNS = "position, id, kind, title, body, link, created_at, users, audience"


def _narrowed(unread_only: bool, kind: NotificationKind | None) -> str:
    return (" AND read_at IS NULL" if unread_only else "") + (
        " AND kind = :kind" if kind is not None else "")


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
                            up_to: int = _NO_BOUND, below: int | None = None,
                            kind: NotificationKind | None = None) -> list[Notification]:
        after = "1 = 1" if page.after is None else (
            "seq < (SELECT seq FROM notifications WHERE id = :after AND user_id = :user_id)")
        lower = "" if below is None else " AND seq < :below"
        rows = await self._db.fetch_all(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications WHERE user_id = :user_id"
            f" AND {after}{_narrowed(unread_only, kind)}{lower} AND seq <= :up_to"
            " ORDER BY seq DESC LIMIT :limit",
            {"user_id": user_id, "after": page.after, "limit": page.limit + 1,
             "up_to": up_to, "below": below, "kind": kind.value if kind else None})
        return [_notification(row) for row in rows]

    async def count_for_user(self, user_id: str, up_to: int = _NO_BOUND,
                             unread_only: bool = False,
                             kind: NotificationKind | None = None) -> int:
        row = await self._db.fetch_one(
            "SELECT COUNT(*) AS n FROM notifications WHERE user_id = :user_id"
            f"{_narrowed(unread_only, kind)} AND seq <= :up_to",
            {"user_id": user_id, "up_to": up_to, "kind": kind.value if kind else None})
        return int(row["n"]) if row else 0

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

    async def recipients_staff(self) -> list[str]:
        rows = await self._db.fetch_all(
            "SELECT id FROM users WHERE active AND deleted_at IS NULL AND role IN (:staff,"
            " :staff_admin) ORDER BY id",
            {"staff": Role.STAFF.value, "staff_admin": Role.STAFF_ADMIN.value})
        return [str(row["id"]) for row in rows]

    async def recipients_all(self) -> list[str]:
        rows = await self._db.fetch_all(
            "SELECT id FROM users WHERE active AND deleted_at IS NULL ORDER BY id")
        return [str(row["id"]) for row in rows]
