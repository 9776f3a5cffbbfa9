"""Scheduled reports in SQL."""

from __future__ import annotations

from datetime import datetime

from adapters.sql.session import Row, SqlSession
from app.domain.reports import ReportFormat, ReportKind
from app.domain.subscriptions import Cadence, ReportSubscription

_COLUMNS = ("id, user_id, cabinet_id, kind, format, cadence, include_children, product_id,"
            " created_at")


def _subscription(row: Row) -> ReportSubscription:
    return ReportSubscription(**{**row, "kind": ReportKind(row["kind"]),
                                 "format": ReportFormat(row["format"]),
                                 "cadence": Cadence(row["cadence"]),
                                 "include_children": bool(row["include_children"])})


class SqlReportSubscriptions:
    def __init__(self, db: SqlSession) -> None:
        self._db = db

    async def add(self, subscription: ReportSubscription) -> None:
        await self._db.execute(
            f"INSERT INTO report_subscriptions ({_COLUMNS}) VALUES (:id, :user_id,"
            " :cabinet_id, :kind, :format, :cadence, :include_children, :product_id,"
            " :created_at)", {**vars(subscription), "kind": subscription.kind.value,
                              "format": subscription.format.value,
                              "cadence": subscription.cadence.value})

    async def get(self, subscription_id: str) -> ReportSubscription | None:
        row = await self._db.fetch_one(
            f"SELECT {_COLUMNS} FROM report_subscriptions WHERE id = :id",
            {"id": subscription_id})
        return _subscription(row) if row else None

    async def of_user(self, user_id: str) -> list[ReportSubscription]:
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM report_subscriptions WHERE user_id = :user_id"
            " ORDER BY created_at, id", {"user_id": user_id})
        return [_subscription(row) for row in rows]

    async def due(self, period_weekly: str, period_monthly: str, after: str | None,
                  limit: int) -> list[ReportSubscription]:
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM report_subscriptions s WHERE (:after IS NULL OR"
            " s.id > :after) AND NOT EXISTS (SELECT 1 FROM report_periods p WHERE"
            " p.subscription_id = s.id AND p.period = CASE s.cadence WHEN 'weekly' THEN"
            " :weekly ELSE :monthly END) ORDER BY s.id LIMIT :limit",
            {"after": after, "weekly": period_weekly, "monthly": period_monthly,
             "limit": limit})
        return [_subscription(row) for row in rows]

    async def claim(self, subscription_id: str, period: str, at: datetime) -> bool:
        return await self._db.execute(
            "INSERT INTO report_periods (subscription_id, period, sent_at)"
            " VALUES (:id, :period, :at) ON CONFLICT (subscription_id, period) DO NOTHING",
            {"id": subscription_id, "period": period, "at": at}) == 1

    async def delete(self, subscription_id: str) -> None:
        await self._db.execute("DELETE FROM report_periods WHERE subscription_id = :id",
                               {"id": subscription_id})
        await self._db.execute("DELETE FROM report_subscriptions WHERE id = :id",
                               {"id": subscription_id})
