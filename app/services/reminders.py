"""The expiry job: reminds the holders of licenses and support certificates that are about
to end, and tells them when one has.

Each reminder goes out once per document, end date and stage: the stage is recorded in the
transaction that writes the notifications, under a key no second run can write again. With
several processes on PostgreSQL an advisory lock lets one of them run the job at a time; the
others skip it until the next round.
"""

from __future__ import annotations

import logging
from datetime import date

from app.domain.licensing import DocumentKind
from app.domain.notifications import Message, NotificationKind
from app.domain.reminders import EXPIRED, DueDocument, ReminderPolicy, when
from app.services.background import repeat
from app.services.notifier import Notifier
from app.services.work import Transactions
from ports.storage import UnitOfWork
from ports.system import Clock

log = logging.getLogger(__name__)
LOCK = "expiry-reminders"


class ReminderService:
    def __init__(self, work: Transactions, clock: Clock, notifier: Notifier,
                 policy: ReminderPolicy) -> None:
        self._work = work
        self._clock = clock
        self._notifier = notifier
        self._policy = policy

    async def run_once(self) -> int:
        """Send every reminder due today; how many documents were reminded of (0 also when
        another process holds the job)."""
        total = 0
        while True:
            # A transaction per document: its recipients are locked in one sorted step, so
            # the job never waits on an announcement that waits on it (a deadlock).
            async with self._work() as uow:
                if not await uow.try_lock(LOCK):
                    return total
                if not await self._remind_one(uow):
                    return total
                await uow.commit()
            total += 1

    async def _remind_one(self, uow: UnitOfWork) -> bool:
        """The reminder of the nearest stage that is due for some document; False when
        none is."""
        today = self._clock.now().date()
        for stage in self._policy.stages:
            first, last = self._policy.window(stage, today)
            for kind in DocumentKind:
                for document in await uow.reminders.due(kind, stage, first, last, 1):
                    if await uow.reminders.mark(document, stage, self._clock.now()):
                        users = await uow.reminders.recipients(document.cabinet_id)
                        await self._notifier.send(uow, users, _message(document, stage, today))
                    return True
        return False

    async def run_forever(self, interval: float) -> None:
        """Now, and again every `interval` seconds; a failure is logged and retried."""
        await repeat("expiry reminders", self._run_and_tell, interval)

    async def _run_and_tell(self) -> None:
        if sent := await self.run_once():
            log.info("expiry reminders: %d documents", sent)


def _message(document: DueDocument, stage: int, today: date) -> Message:
    license_ = document.kind is DocumentKind.LICENSE
    what = "License" if license_ else "Support certificate"
    link = f"/{'licenses' if license_ else 'certificates'}/{document.id}"
    held = f"{document.product_name}, held by {document.cabinet_name}"
    if stage == EXPIRED:
        return Message(
            NotificationKind.LICENSE_EXPIRED if license_ else NotificationKind.CERTIFICATE_EXPIRED,
            f"{what} {document.number} has expired",
            f"{what} {document.number} ({held}) was valid until {document.valid_to}. "
            "Contact us to renew it.", link)
    return Message(
        NotificationKind.LICENSE_EXPIRING if license_ else NotificationKind.CERTIFICATE_EXPIRING,
        f"{what} {document.number} expires {when(document.valid_to, today)}",
        f"{what} {document.number} ({held}) is valid until {document.valid_to}. "
        "Renew it in time to keep " + ("using the software." if license_ else "your support."),
        link)
