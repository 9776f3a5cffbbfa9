"""The storage port's scheduled reports, on both adapters: subscriptions of a user, what is
due this week or month, and each period claimed once, also by two claims at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from app.domain.reports import ReportFormat, ReportKind
from app.domain.roles import Role
from app.domain.subscriptions import Cadence, ReportSubscription
from tests.contract.test_storage import (
    IDS,
    T0,
    Adapter,
    add_all,
    new_cabinet,
    new_user,
    storage,
)

__all__ = ["storage"]  # the fixture, shared with test_storage


def subscription(user_id: str, cabinet_id: str | None, cadence: Cadence,
                 at_seconds: int = 0) -> ReportSubscription:
    return ReportSubscription(
        id=IDS.new_id(), user_id=user_id, cabinet_id=cabinet_id, kind=ReportKind.LICENSES,
        format=ReportFormat.XLSX, cadence=cadence, include_children=True, product_id=None,
        created_at=T0 + timedelta(seconds=at_seconds))


async def test_subscriptions_round_trip_and_come_due_once_a_period(storage: Adapter) -> None:
    cabinet = new_cabinet()
    admin = new_user(cabinet, role=Role.CUSTOMER_ADMIN)
    await add_all(storage, cabinet, admin)
    weekly = subscription(admin.id, cabinet.id, Cadence.WEEKLY)
    monthly = subscription(admin.id, None, Cadence.MONTHLY, 1)
    async with storage.unit_of_work() as uow:
        for made in (weekly, monthly):
            await uow.report_subscriptions.add(made)
        await uow.commit()
    async with storage.unit_of_work() as uow:
        assert await uow.report_subscriptions.of_user(admin.id) == [weekly, monthly]
        assert await uow.report_subscriptions.get(weekly.id) == weekly
        first = await uow.report_subscriptions.due("2031-W10", "2031-03", None, 1000)
        assert {weekly.id, monthly.id} <= {s.id for s in first}
        assert await uow.report_subscriptions.claim(weekly.id, "2031-W10", T0)
        assert not await uow.report_subscriptions.claim(weekly.id, "2031-W10", T0)
        await uow.commit()
    async with storage.unit_of_work() as uow:
        then = {s.id for s in await uow.report_subscriptions.due("2031-W10", "2031-03",
                                                                 None, 1000)}
        assert weekly.id not in then and monthly.id in then
        later = {s.id for s in await uow.report_subscriptions.due("2031-W11", "2031-03",
                                                                  None, 1000)}
        assert weekly.id in later
        await uow.report_subscriptions.delete(weekly.id)
        await uow.commit()
    async with storage.unit_of_work() as uow:
        assert await uow.report_subscriptions.of_user(admin.id) == [monthly]


async def test_two_claims_of_one_period_at_once_make_one(storage: Adapter) -> None:
    cabinet = new_cabinet()
    admin = new_user(cabinet, role=Role.CUSTOMER_ADMIN)
    await add_all(storage, cabinet, admin)
    made = subscription(admin.id, cabinet.id, Cadence.MONTHLY)
    async with storage.unit_of_work() as uow:
        await uow.report_subscriptions.add(made)
        await uow.commit()

    async def claim() -> bool:
        async with storage.unit_of_work() as uow:
            won = await uow.report_subscriptions.claim(made.id, "2031-04", T0)
            await asyncio.sleep(0.05)  # both inside their transactions at once
            await uow.commit()
            return won

    results = await asyncio.gather(claim(), claim())
    assert sorted(results) == [False, True]
