"""The expiry job on both databases: each reminder once per document, end date and stage,
to the right people, in the portal and by e-mail, also when two runs meet.

The PostgreSQL database is shared with other tests, so each test here lives in a year of
its own, far from theirs: the job only ever finds this test's documents due.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from app.config import PROJECT_ROOT
from app.domain.cabinets import Cabinet, CabinetKind
from app.domain.events import MailQueued, NotificationsCreated
from app.domain.licensing import Certificate, DocumentKind, License
from app.domain.notifications import Notification, NotificationKind, Preference
from app.domain.products import Product
from app.domain.reminders import ReminderPolicy
from app.domain.roles import Role
from app.domain.users import User
from app.services.mail import EmailComposer, MailPolicy
from app.services.notifier import Notifier
from app.services.reminders import LOCK, ReminderService
from app.services.work import Transactions
from tests.contract.test_storage import (
    IDS,
    Adapter,
    add_all,
    add_documents,
    catalogue,
    new_cabinet,
    new_document,
    new_user,
    storage,
)
from tests.fakes import RecordingEventBus

__all__ = ["storage"]  # the fixture, shared with test_storage

_YEARS = itertools.count(2200 + secrets.randbelow(7000), 2)


class Clock:
    def __init__(self, today: date) -> None:
        self.at = datetime.combine(today, time(3, 0), tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def go_to(self, day: date) -> None:
        self.at = datetime.combine(day, time(3, 0), tzinfo=UTC)


class Job:
    """The expiry job as a process would run it, on a clock the test moves."""

    def __init__(self, storage: Adapter, today: date, days: tuple[int, ...] = (30, 7, 1),
                 lookback: int = 7) -> None:
        self.clock = Clock(today)
        self.bus = RecordingEventBus()
        composer = EmailComposer(MailPolicy(sender="portal@portal.test",
                                            base_url="https://portal.test", brand="Acme",
                                            templates=PROJECT_ROOT / "templates"))
        notifier = Notifier(self.clock, IDS, composer)
        self.service = ReminderService(Transactions(storage, self.bus, notifier.prepare),
                                       self.clock, notifier, ReminderPolicy(days, lookback))

    async def run(self) -> int:
        return await self.service.run_once()


def a_new_year() -> date:
    """1 January of a year no other test uses."""
    return date(next(_YEARS), 1, 1)


async def holder(storage: Adapter, parent: Cabinet | None = None) -> tuple[Cabinet, User]:
    cabinet = new_cabinet(parent, kind=CabinetKind.CUSTOMER)
    user = new_user(cabinet)
    await add_all(storage, cabinet, user)
    return cabinet, user


async def setting(storage: Adapter) -> tuple[date, Product, Cabinet, User]:
    """A year of the test's own, a product, and a cabinet with one user."""
    product = await catalogue(storage)
    cabinet, user = await holder(storage)
    return a_new_year(), product, cabinet, user


async def issued(storage: Adapter, kind: DocumentKind, cabinet: Cabinet, product: Product,
                 valid_to: date | None, *, revoked: bool = False) -> License | Certificate:
    document = new_document(kind, cabinet, product, valid_to=valid_to, revoked=revoked)
    document = replace(document, valid_from=date(1999, 1, 1))
    await add_documents(storage, document)
    return document


async def inbox(storage: Adapter, user: User) -> list[Notification]:
    async with storage.unit_of_work() as uow:
        return await uow.notifications.after(user.id, 0, 1000)


def about(notifications: list[Notification], document: License | Certificate
          ) -> list[tuple[str, str]]:
    return [(n.kind.value, n.title) for n in notifications if n.link
            and n.link.endswith(document.id)]


async def test_each_stage_is_sent_once_on_its_day(storage: Adapter) -> None:
    today, product, cabinet, user = await setting(storage)
    license_ = await issued(storage, DocumentKind.LICENSE, cabinet, product,
                            today + timedelta(days=30))
    job = Job(storage, today)
    seen: list[tuple[str, str]] = []
    number = license_.number
    for offset, expected in [
            (0, ("license.expiring", f"License {number} expires in 30 days")),
            (1, None), (22, None),
            (23, ("license.expiring", f"License {number} expires in 7 days")),
            (28, None),
            (29, ("license.expiring", f"License {number} expires tomorrow")),
            (30, None),  # its last valid day: the "tomorrow" reminder stands for it
            (31, ("license.expired", f"License {number} has expired")),
            (32, None), (60, None)]:
        job.clock.go_to(today + timedelta(days=offset))
        assert await job.run() == (1 if expected else 0), offset
        assert await job.run() == 0  # a second run the same day finds nothing
        if expected:
            seen.append(expected)
        assert about(await inbox(storage, user), license_) == seen, offset
    stored = await inbox(storage, user)
    assert stored[0].link == f"/licenses/{license_.id}"
    assert product.name in stored[0].body and cabinet.name in stored[0].body
    assert str(license_.valid_to) in stored[0].body


async def test_a_document_found_late_gets_only_the_nearest_reminder(storage: Adapter) -> None:
    today, product, cabinet, user = await setting(storage)
    certificate = await issued(storage, DocumentKind.CERTIFICATE, cabinet, product,
                               today + timedelta(days=5))
    job = Job(storage, today)
    assert await job.run() == 1
    assert await job.run() == 0
    assert about(await inbox(storage, user), certificate) == [
        ("certificate.expiring", f"Support certificate {certificate.number} expires in 5 days")]
    job.clock.go_to(today + timedelta(days=4))
    assert await job.run() == 1
    assert [kind for kind, _ in about(await inbox(storage, user), certificate)] == [
        "certificate.expiring", "certificate.expiring"]


async def test_revoked_perpetual_and_long_expired_documents_get_nothing(
        storage: Adapter) -> None:
    today, product, cabinet, user = await setting(storage)
    await issued(storage, DocumentKind.LICENSE, cabinet, product, today + timedelta(days=3),
                 revoked=True)
    await issued(storage, DocumentKind.LICENSE, cabinet, product, None)
    await issued(storage, DocumentKind.CERTIFICATE, cabinet, product,
                 today - timedelta(days=8))  # ended before the look-back of 7 days
    recent = await issued(storage, DocumentKind.CERTIFICATE, cabinet, product,
                          today - timedelta(days=7))
    job = Job(storage, today, lookback=7)
    assert await job.run() == 1
    assert [(n.kind, n.link) for n in await inbox(storage, user)] == [
        (NotificationKind.CERTIFICATE_EXPIRED, f"/certificates/{recent.id}")]


async def test_a_renewed_document_is_reminded_again(storage: Adapter) -> None:
    today, product, cabinet, user = await setting(storage)
    license_ = await issued(storage, DocumentKind.LICENSE, cabinet, product,
                            today + timedelta(days=2))
    job = Job(storage, today)
    assert await job.run() == 1
    assert isinstance(license_, License)
    renewed = replace(license_, valid_to=today + timedelta(days=7))
    async with storage.unit_of_work() as uow:
        await uow.licenses.update(renewed)
        await uow.commit()
    assert await job.run() == 1
    assert [title for _, title in about(await inbox(storage, user), license_)] == [
        f"License {license_.number} expires in 2 days",
        f"License {license_.number} expires in 7 days"]


async def test_reminders_go_to_the_cabinet_and_the_admins_above_it(storage: Adapter) -> None:
    today = a_new_year()
    product = await catalogue(storage)
    vendor = new_cabinet(kind=CabinetKind.VENDOR)
    staff_admin = new_user(vendor, role=Role.STAFF_ADMIN)
    group = new_cabinet(vendor, kind=CabinetKind.CUSTOMER)
    group_admin = new_user(group, role=Role.CUSTOMER_ADMIN)
    group_user = new_user(group)
    site = new_cabinet(group, kind=CabinetKind.CUSTOMER)
    site_admin, site_user = new_user(site, role=Role.CUSTOMER_ADMIN), new_user(site)
    gone = new_user(site, active=False)
    sibling = new_cabinet(group, kind=CabinetKind.CUSTOMER)
    sibling_admin = new_user(sibling, role=Role.CUSTOMER_ADMIN)
    await add_all(storage, vendor, staff_admin, group, group_admin, group_user, site,
                  site_admin, site_user, gone, sibling, sibling_admin)
    license_ = await issued(storage, DocumentKind.LICENSE, site, product,
                            today + timedelta(days=1))
    job = Job(storage, today)
    assert await job.run() == 1
    told = {u.id for u in (staff_admin, group_admin, group_user, site_admin, site_user, gone,
                           sibling_admin) if about(await inbox(storage, u), license_)}
    assert told == {group_admin.id, site_admin.id, site_user.id}


async def test_reminders_are_e_mailed_unless_turned_off(storage: Adapter) -> None:
    today = a_new_year()
    product = await catalogue(storage)
    cabinet, mailed = await holder(storage)
    quiet = new_user(cabinet)
    await add_all(storage, quiet)
    async with storage.unit_of_work() as uow:
        await uow.notifications.set_preferences(quiet.id, {
            NotificationKind.LICENSE_EXPIRING: Preference(in_app=True, email=False)})
        await uow.commit()
    license_ = await issued(storage, DocumentKind.LICENSE, cabinet, product,
                            today + timedelta(days=7))
    job = Job(storage, today)
    assert await job.run() == 1
    [to_mailed] = await inbox(storage, mailed)
    [to_quiet] = await inbox(storage, quiet)
    async with storage.unit_of_work() as uow:
        mail = await uow.outbox.get(f"<{to_mailed.id}@portal.test>")
        not_mailed = await uow.outbox.get(f"<{to_quiet.id}@portal.test>")
    assert mail is not None and not_mailed is None
    assert mail.recipient == f"{mailed.name} <{mailed.email}>"
    assert mail.subject == f"License {license_.number} expires in 7 days"
    assert f"https://portal.test/licenses/{license_.id}" in mail.text_body
    created = [e for e in job.bus.published if isinstance(e, NotificationsCreated)]
    assert len(created) == 1 and set(created[0].batch.users) == {mailed.id, quiet.id}
    assert [e.count for e in job.bus.published if isinstance(e, MailQueued)] == [1]


async def test_two_runs_at_once_send_each_reminder_once(storage: Adapter) -> None:
    today, product, cabinet, user = await setting(storage)
    documents = [await issued(storage, kind, cabinet, product, today + timedelta(days=days))
                 for kind in DocumentKind for days in (-1, 0, 1, 6, 7, 20, 30)]
    first, second = Job(storage, today), Job(storage, today)
    counts = await asyncio.gather(first.run(), second.run(), first.run(), second.run())
    assert sum(counts) == len(documents)
    received = await inbox(storage, user)
    assert sorted(n.link or "" for n in received) == sorted(
        f"/{'licenses' if isinstance(d, License) else 'certificates'}/{d.id}"
        for d in documents)


async def test_a_backlog_of_hundreds_is_sent_in_full(storage: Adapter) -> None:
    today, product, cabinet, user = await setting(storage)
    await add_documents(storage, *[
        replace(new_document(DocumentKind.CERTIFICATE, cabinet, product,
                             valid_to=today + timedelta(days=i % 30)),
                valid_from=date(1999, 1, 1)) for i in range(230)])
    job = Job(storage, today)
    assert await job.run() == 230
    assert len(await inbox(storage, user)) == 230
    announced = [user for e in job.bus.published if isinstance(e, NotificationsCreated)
                 for user in e.batch.users]
    assert len(announced) == 230


@pytest.mark.postgres
@pytest.mark.parametrize("storage", ["postgres"], indirect=True)
async def test_a_process_holding_the_job_keeps_the_others_out(storage: Adapter) -> None:
    today, product, cabinet, user = await setting(storage)
    await issued(storage, DocumentKind.LICENSE, cabinet, product, today + timedelta(days=7))
    job = Job(storage, today)
    async with storage.unit_of_work() as other:
        assert await other.try_lock(LOCK)
        assert await job.run() == 0
        assert await inbox(storage, user) == []
    assert await job.run() == 1


async def test_a_license_and_its_certificate_are_reminded_each(storage: Adapter) -> None:
    today, product, cabinet, user = await setting(storage)
    license_ = await issued(storage, DocumentKind.LICENSE, cabinet, product,
                            today + timedelta(days=30))
    certificate = await issued(storage, DocumentKind.CERTIFICATE, cabinet, product,
                               today + timedelta(days=30))
    assert isinstance(certificate, Certificate)
    assert await Job(storage, today).run() == 2
    kinds = sorted(n.kind.value for n in await inbox(storage, user))
    assert kinds == ["certificate.expiring", "license.expiring"]
    assert license_.id != certificate.id
