"""Support requests in SQL: the requests, their comments and files, and the delivery queue."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from adapters.sql.session import Row, SqlSession
from adapters.sql.statements import backlog, contains, scope_filter
from app.domain.access import Scope
from app.domain.paging import PageRequest
from app.domain.support import (
    Attachment,
    Comment,
    Delivery,
    DeliveryKind,
    IssueFilter,
    IssueListing,
    IssueStatus,
    Priority,
    SupportDelivery,
    SupportIssue,
)

_ISSUE_COLUMNS = ("id", "number", "cabinet_id", "author_id", "author_name", "product_id",
                  "certificate_id", "level", "license_id", "subject", "description", "status",
                  "priority", "assignee_id", "created_at", "updated_at", "first_response_due",
                  "resolution_due", "first_response_at", "resolved_at", "external_id",
                  "external_status", "delivery", "delivery_error")
_SELECT_ISSUE = ", ".join(f"i.{c}" for c in _ISSUE_COLUMNS)
_COMMENT_COLUMNS = ("id, issue_id, author_id, author_name, by_staff, body, public, created_at,"
                    " updated_at, deleted_at, external_id, delivery")
_ATTACHMENT_COLUMNS = ("id, issue_id, comment_id, uploader_id, by_staff, filename,"
                       " content_type, size, sha256, bucket, object_key, created_at,"
                       " deleted_at, external_id, delivery")
_DELIVERY_COLUMNS = ("id, issue_id, kind, object_id, status, attempts, created_at,"
                     " next_attempt_at, last_error")


# Dictionary lookups: calling an enum per column per row was a tenth of a list's time.
_STATUSES = {s.value: s for s in IssueStatus}
_PRIORITIES = {p.value: p for p in Priority}
_DELIVERIES = {d.value: d for d in Delivery}


def _issue(row: Row) -> SupportIssue:
    return SupportIssue(**{**row, "status": _STATUSES[row["status"]],
                           "priority": _PRIORITIES[row["priority"]],
                           "delivery": _DELIVERIES[row["delivery"]]})


def _listing(row: Row) -> IssueListing:
    values = dict(row)
    product, cabinet = values.pop("product_name"), values.pop("cabinet_name")
    return IssueListing(_issue(values), product, cabinet)


def _comment(row: Row) -> Comment:
    return Comment(**{**row, "by_staff": bool(row["by_staff"]), "public": bool(row["public"]),
                      "delivery": Delivery(row["delivery"])})


def _attachment(row: Row) -> Attachment:
    values = {**row, "by_staff": bool(row["by_staff"]), "size": int(row["size"]),
              "delivery": Delivery(row["delivery"]), "key": row["object_key"]}
    del values["object_key"]
    return Attachment(**values)


def _delivery(row: Row) -> SupportDelivery:
    return SupportDelivery(**{**row, "kind": DeliveryKind(row["kind"]),
                              "status": Delivery(row["status"]),
                              "attempts": int(row["attempts"])})


def _values(item: Any, columns: str | tuple[str, ...]) -> tuple[str, str, dict[str, Any]]:
    """The column list, the placeholders and the parameters of an INSERT of `item`."""
    names = [c.strip() for c in columns.split(",")] if isinstance(columns, str) else \
        list(columns)
    params = {name: getattr(item, "key" if name == "object_key" else name) for name in names}
    params = {k: v.value if isinstance(v, Enum) else v for k, v in params.items()}
    return ", ".join(names), ", ".join(f":{n}" for n in names), params


class SqlSupport:
    def __init__(self, db: SqlSession) -> None:
        self._db = db

    async def add(self, issue: SupportIssue) -> None:
        columns, marks, params = _values(issue, _ISSUE_COLUMNS)
        await self._db.execute(f"INSERT INTO support_issues ({columns}) VALUES ({marks})",
                               params)

    async def get(self, issue_id: str, scope: Scope, *,
                  for_update: bool = False) -> SupportIssue | None:
        in_scope, scope_params = scope_filter(scope, "c.path")
        lock = f"{self._db.for_update} OF i" if for_update and self._db.for_update else ""
        row = await self._db.fetch_one(
            f"SELECT {_SELECT_ISSUE} FROM support_issues i JOIN cabinets c"
            f" ON c.id = i.cabinet_id WHERE i.id = :id AND {in_scope}{lock}",
            {"id": issue_id, **scope_params})
        return _issue(row) if row else None

    async def get_by_external_id(self, external_id: str) -> SupportIssue | None:
        row = await self._db.fetch_one(
            f"SELECT {_SELECT_ISSUE} FROM support_issues i WHERE i.external_id = :external_id",
            {"external_id": external_id})
        return _issue(row) if row else None

    async def number_taken(self, number: str) -> bool:
        return await self._db.fetch_one("SELECT 1 AS taken FROM support_issues WHERE number"
                                        " = :number", {"number": number}) is not None

    async def list_visible(self, scope: Scope, filters: IssueFilter,
                           page: PageRequest) -> list[IssueListing]:
        in_scope, params = scope_filter(scope, "c.path")
        where = [in_scope]
        if page.after is not None:
            where.append("i.id < :after")
        if filters.status is not None:
            where.append("i.status = :status")
        if filters.product_id is not None:
            where.append("i.product_id = :product_id")
        if filters.text:
            where.append("(LOWER(i.subject) LIKE :text ESCAPE '!' OR i.number = :number)")
        if filters.active:
            where.append("i.status NOT IN ('resolved', 'closed')")
        if filters.assignee_id is not None:
            where.append("i.assignee_id = :assignee_id")
        if filters.unassigned:
            where.append("i.assignee_id IS NULL")
        text = (filters.text or "").strip()
        rows = await self._db.fetch_all(
            f"SELECT {_SELECT_ISSUE}, p.name AS product_name, c.name AS cabinet_name"
            " FROM support_issues i JOIN cabinets c ON c.id = i.cabinet_id"
            f" JOIN products p ON p.id = i.product_id WHERE {' AND '.join(where)}"
            " ORDER BY i.id DESC LIMIT :limit",
            {**params, "after": page.after, "limit": page.limit + 1,
             "status": filters.status.value if filters.status else None,
             "product_id": filters.product_id, "number": text.upper(),
             "assignee_id": filters.assignee_id,
             "text": contains(text)})
        return [_listing(row) for row in rows]

    async def open_in_helpdesk(self, after: str | None, limit: int) -> list[SupportIssue]:
        rows = await self._db.fetch_all(
            f"SELECT {_SELECT_ISSUE} FROM support_issues i WHERE i.external_id IS NOT NULL"
            " AND i.status <> 'closed' AND (:after IS NULL OR i.id > :after)"
            " ORDER BY i.id LIMIT :limit", {"after": after, "limit": limit})
        return [_issue(row) for row in rows]

    async def update(self, issue: SupportIssue) -> None:
        changing = [c for c in _ISSUE_COLUMNS if c not in ("id", "number", "cabinet_id",
                                                           "author_id", "created_at")]
        _, _, params = _values(issue, _ISSUE_COLUMNS)
        await self._db.execute(
            f"UPDATE support_issues SET {', '.join(f'{c} = :{c}' for c in changing)}"
            " WHERE id = :id", params)

    async def add_comment(self, comment: Comment) -> None:
        columns, marks, params = _values(comment, _COMMENT_COLUMNS)
        await self._db.execute(f"INSERT INTO support_comments ({columns}) VALUES ({marks})",
                               params)

    async def get_comment(self, issue_id: str, comment_id: str) -> Comment | None:
        row = await self._db.fetch_one(
            f"SELECT {_COMMENT_COLUMNS} FROM support_comments WHERE id = :id"
            " AND issue_id = :issue_id AND deleted_at IS NULL",
            {"id": comment_id, "issue_id": issue_id})
        return _comment(row) if row else None

    async def comment_by_external_id(self, issue_id: str,
                                     external_id: str) -> Comment | None:
        row = await self._db.fetch_one(
            f"SELECT {_COMMENT_COLUMNS} FROM support_comments WHERE issue_id = :issue_id"
            " AND external_id = :external_id",
            {"issue_id": issue_id, "external_id": external_id})
        return _comment(row) if row else None

    async def comments(self, issue_id: str, *, internal: bool) -> list[Comment]:
        only_public = "" if internal else " AND public"
        rows = await self._db.fetch_all(
            f"SELECT {_COMMENT_COLUMNS} FROM support_comments WHERE issue_id = :issue_id"
            f" AND deleted_at IS NULL{only_public} ORDER BY created_at, id",
            {"issue_id": issue_id})
        return [_comment(row) for row in rows]

    async def update_comment(self, comment: Comment) -> None:
        await self._db.execute(
            "UPDATE support_comments SET body = :body, updated_at = :updated_at,"
            " deleted_at = :deleted_at, external_id = :external_id, delivery = :delivery"
            " WHERE id = :id",
            {"id": comment.id, "body": comment.body, "updated_at": comment.updated_at,
             "deleted_at": comment.deleted_at, "external_id": comment.external_id,
             "delivery": comment.delivery.value})

    async def add_attachment(self, attachment: Attachment) -> None:
        columns, marks, params = _values(attachment, _ATTACHMENT_COLUMNS)
        await self._db.execute(
            f"INSERT INTO support_attachments ({columns}) VALUES ({marks})", params)

    async def get_attachment(self, issue_id: str, attachment_id: str) -> Attachment | None:
        row = await self._db.fetch_one(
            f"SELECT {_ATTACHMENT_COLUMNS} FROM support_attachments WHERE id = :id"
            " AND issue_id = :issue_id AND deleted_at IS NULL",
            {"id": attachment_id, "issue_id": issue_id})
        return _attachment(row) if row else None

    async def attachment_by_external_id(self, issue_id: str,
                                        external_id: str) -> Attachment | None:
        row = await self._db.fetch_one(
            f"SELECT {_ATTACHMENT_COLUMNS} FROM support_attachments WHERE issue_id = :issue_id"
            " AND external_id = :external_id",
            {"issue_id": issue_id, "external_id": external_id})
        return _attachment(row) if row else None

    async def attachments(self, issue_id: str) -> list[Attachment]:
        rows = await self._db.fetch_all(
            f"SELECT {_ATTACHMENT_COLUMNS} FROM support_attachments WHERE issue_id = :issue_id"
            " AND deleted_at IS NULL ORDER BY created_at, id", {"issue_id": issue_id})
        return [_attachment(row) for row in rows]

    async def update_attachment(self, attachment: Attachment) -> None:
        await self._db.execute(
            "UPDATE support_attachments SET deleted_at = :deleted_at,"
            " external_id = :external_id, delivery = :delivery WHERE id = :id",
            {"id": attachment.id, "deleted_at": attachment.deleted_at,
             "external_id": attachment.external_id, "delivery": attachment.delivery.value})


class SqlSupportDeliveries:
    def __init__(self, db: SqlSession) -> None:
        self._db = db

    async def queue(self, delivery: SupportDelivery) -> None:
        columns, marks, params = _values(delivery, _DELIVERY_COLUMNS)
        await self._db.execute(
            f"INSERT INTO support_deliveries ({columns}) VALUES ({marks})", params)

    async def claim(self, now: datetime, lease_until: datetime,
                    limit: int) -> list[SupportDelivery]:
        skip = " FOR UPDATE SKIP LOCKED" if self._db.dialect == "postgres" else ""
        rows = await self._db.fetch_all(
            f"SELECT {_DELIVERY_COLUMNS} FROM support_deliveries WHERE status = 'pending'"
            " AND next_attempt_at <= :now AND (locked_until IS NULL OR locked_until <= :now)"
            f" ORDER BY next_attempt_at, id LIMIT :limit{skip}", {"now": now, "limit": limit})
        for row in rows:
            await self._db.execute(
                "UPDATE support_deliveries SET locked_until = :until WHERE id = :id",
                {"until": lease_until, "id": row["id"]})
        return [_delivery(row) for row in rows]

    async def done(self, delivery_id: str) -> None:
        await self._db.execute(
            "UPDATE support_deliveries SET status = 'delivered', locked_until = NULL,"
            " last_error = NULL WHERE id = :id", {"id": delivery_id})

    async def retry_later(self, delivery_id: str, attempts: int, at: datetime,
                          error: str | None) -> None:
        await self._db.execute(
            "UPDATE support_deliveries SET attempts = :attempts, next_attempt_at = :at,"
            " locked_until = NULL, last_error = :error WHERE id = :id",
            {"id": delivery_id, "attempts": attempts, "at": at,
             "error": error[:1000] if error else None})

    async def give_up(self, delivery_id: str, attempts: int, error: str) -> None:
        await self._db.execute(
            "UPDATE support_deliveries SET status = 'failed', attempts = :attempts,"
            " locked_until = NULL, last_error = :error WHERE id = :id",
            {"id": delivery_id, "attempts": attempts, "error": error[:1000]})

    async def failed(self, limit: int) -> list[SupportDelivery]:
        rows = await self._db.fetch_all(
            f"SELECT {_DELIVERY_COLUMNS} FROM support_deliveries WHERE status = 'failed'"
            " ORDER BY created_at DESC, id DESC LIMIT :limit", {"limit": limit})
        return [_delivery(row) for row in rows]

    async def pending_for(self, issue_id: str) -> int:
        row = await self._db.fetch_one(
            "SELECT COUNT(*) AS n FROM support_deliveries WHERE issue_id = :issue_id"
            " AND status = 'pending'", {"issue_id": issue_id})
        return int(row["n"]) if row else 0

    async def backlog(self) -> tuple[int, datetime | None]:
        return await backlog(self._db, "support_deliveries")

    async def cursor(self, name: str) -> str | None:
        row = await self._db.fetch_one("SELECT value FROM support_cursors WHERE name = :name",
                                       {"name": name})
        return str(row["value"]) if row else None

    async def set_cursor(self, name: str, value: str) -> None:
        await self._db.execute(
            "INSERT INTO support_cursors (name, value) VALUES (:name, :value)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            {"name": name, "value": value})
