"""The e-mail outbox in SQL: queued, leased, sent or given up."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import datetime
from typing import Any

from adapters.sql.session import Row, SqlSession
from adapters.sql.statements import BATCH_ROWS, backlog, contains
from app.domain.outbox import OutboxMessage, OutboxStatus

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
        await self._db.insert("outbox", _OUTBOX_COLUMNS, [{
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

    async def backlog(self) -> tuple[int, datetime | None]:
        return await backlog(self._db, "outbox")

    async def list_recent(self, limit: int, recipient: str = "") -> list[OutboxMessage]:
        where = " WHERE LOWER(o.recipient) LIKE :recipient ESCAPE '!'" if recipient else ""
        rows = await self._db.fetch_all(
            f"{_OUTBOX_SELECT}{where} ORDER BY o.created_at DESC, o.id DESC"
            " LIMIT :limit", {"limit": limit, "recipient": contains(recipient)})
        return [_outbox(row) for row in rows]
