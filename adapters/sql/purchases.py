"""Purchase events in SQL: each event id recorded once, with its outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapters.sql.session import SqlSession


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
