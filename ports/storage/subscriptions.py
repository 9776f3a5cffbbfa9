"""Scheduled reports in storage: the subscriptions, and the periods already sent."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from app.domain.subscriptions import ReportSubscription


class ReportSubscriptionRepository(Protocol):
    async def add(self, subscription: ReportSubscription) -> None: ...

    async def get(self, subscription_id: str) -> ReportSubscription | None: ...

    async def of_user(self, user_id: str) -> list[ReportSubscription]:
        """Oldest first."""

    async def due(self, period_weekly: str, period_monthly: str, after: str | None,
                  limit: int) -> list[ReportSubscription]:
        """Those with no report sent for their cadence's current period, in id order after
        `after`."""

    async def claim(self, subscription_id: str, period: str, at: datetime) -> bool:
        """Record the period as sent; False if it was already (by another process): each
        period's report goes out once."""

    async def delete(self, subscription_id: str) -> None:
        """It and its record of periods."""
