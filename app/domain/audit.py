from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.domain.reports import CellKind, Column, Row, safe_cells


@dataclass(frozen=True)
class AuditEntry:
    """Who did what to which object, and from where."""

    id: str
    at: datetime
    action: str
    actor_id: str | None
    actor_email: str | None
    object_type: str
    object_id: str | None
    cabinet_id: str | None
    address: str | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditFilter:
    """Narrows the audit log. `action` is one action ("download") or a family of them
    ("user": user.created, user.updated, ...); `actor` a part of the actor's e-mail;
    `since` and `before` bound the time; `product` a product's code, which downloads
    record in their details; `cabinet_id` an organisation: what happened in it and in
    those below it."""

    action: str | None = None
    object_id: str | None = None
    actor: str = ""
    since: datetime | None = None
    before: datetime | None = None
    product: str | None = None
    cabinet_id: str | None = None


EVERY_ENTRY = AuditFilter()
# The audit log sorts by time only (newest first, or oldest).
AUDIT_SORTS = ("at",)
# The audit log's CSV export.
AUDIT_COLUMNS = (Column("Time", CellKind.TIME, 20), Column("Action", width=22),
                 Column("Who", width=28), Column("Object type"), Column("Object id", width=36),
                 Column("Organisation id", width=36), Column("Address", width=16),
                 Column("Details", width=60))


def described(value: Any) -> str:
    """A detail's value as people read it: lists joined, `{field: [before, after]}` as
    `field: before → after`, nested objects as `key: value; ...`."""
    if isinstance(value, dict):
        return "; ".join(
            f"{key}: {described(item[0])} → {described(item[1])}"
            if isinstance(item, list) and len(item) == 2 else f"{key}: {described(item)}"
            for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(described(item) for item in value)
    return "—" if value is None or value == "" else str(value)


def audit_row(entry: AuditEntry) -> Row:
    """An entry as the export's row, safe for a spreadsheet; details as `key: value; ...`."""
    details = "; ".join(f"{key}: {described(value)}"
                        for key, value in sorted(entry.details.items()))
    return safe_cells((entry.at, entry.action, entry.actor_email, entry.object_type,
                       entry.object_id, entry.cabinet_id, entry.address, details))
