"""Scheduled reports: an administrator has a report sent weekly or monthly. What goes out is
an e-mail (through the outbox) with a short-lived signed link, never the file; the link
makes the report when opened, with its owner's reach at that moment. A subscription ends
when its owner can no longer have it; each period's report is sent once, whichever process
finds it due."""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.domain import access
from app.domain.errors import NotFound
from app.domain.events import MailQueued
from app.domain.reports import ReportFormat, ReportKind
from app.domain.subscriptions import Cadence, ReportSubscription, period_of
from app.domain.support import IssueFilter
from app.domain.users import Principal, User
from app.services.background import repeat
from app.services.licensing import DocumentQuery
from app.services.mail import EmailComposer
from app.services.reports import ReportQuery, ReportService
from app.services.work import Transactions, UseCases
from ports.storage import UnitOfWork
from ports.system import Clock, IdGenerator

log = logging.getLogger(__name__)
EVERYTHING = access.Scope.everything()
BATCH = 100


@dataclass(frozen=True)
class SubscriptionPolicy:
    secret: bytes
    link_ttl: timedelta
    base_url: str


@dataclass(frozen=True)
class SubscriptionDraft:
    kind: ReportKind
    format: ReportFormat
    cadence: Cadence
    cabinet_id: str | None = None
    include_children: bool = True
    product_id: str | None = None


def query_of(subscription: ReportSubscription | SubscriptionDraft) -> ReportQuery:
    return ReportQuery(kind=subscription.kind, cabinet_id=subscription.cabinet_id,
                       include_children=subscription.include_children,
                       documents=DocumentQuery(product=subscription.product_id),
                       issues=IssueFilter(product_id=subscription.product_id))


class ReportSubscriptions(UseCases):
    def __init__(self, work: Transactions, clock: Clock, ids: IdGenerator,
                 reports: ReportService, composer: EmailComposer,
                 policy: SubscriptionPolicy) -> None:
        super().__init__(work, clock, ids)
        self._reports = reports
        self._composer = composer
        self._policy = policy

    async def subscribe(self, actor: Principal, draft: SubscriptionDraft) -> ReportSubscription:
        """The organisation must be in reach and the filters valid, as for the report."""
        access.require_may_subscribe_reports(actor)
        await self._reports.prepare(actor, query_of(draft), draft.format)
        subscription = ReportSubscription(
            id=self._ids.new_id(), user_id=actor.user_id or "", cabinet_id=draft.cabinet_id,
            kind=draft.kind, format=draft.format, cadence=draft.cadence,
            include_children=draft.include_children, product_id=draft.product_id,
            created_at=self._clock.now())
        async with self._work() as uow:
            await uow.report_subscriptions.add(subscription)
            await uow.audit.add(self._audit.entry(
                "report.subscribed", actor, "report", subscription.id, draft.cabinet_id,
                kind=draft.kind.value, format=draft.format.value,
                cadence=draft.cadence.value))
            await uow.commit()
        return subscription

    async def of_user(self, actor: Principal) -> list[ReportSubscription]:
        async with self._work(read_only=True) as uow:
            return await uow.report_subscriptions.of_user(actor.user_id or "")

    async def cancel(self, actor: Principal, subscription_id: str) -> None:
        """One's own; anyone else's is 404."""
        async with self._work() as uow:
            found = await uow.report_subscriptions.get(subscription_id)
            if found is None or found.user_id != actor.user_id:
                raise NotFound("No such scheduled report.")
            await uow.report_subscriptions.delete(found.id)
            await uow.commit()

    # ---- sending

    async def send_due(self) -> int:
        """E-mail each report due in its current period; how many went out."""
        today = self._clock.now().date()
        weekly, monthly = period_of(Cadence.WEEKLY, today), period_of(Cadence.MONTHLY, today)
        sent, after = 0, None
        while True:
            async with self._work(read_only=True) as uow:
                due = await uow.report_subscriptions.due(weekly, monthly, after, BATCH)
            for subscription in due:
                period = weekly if subscription.cadence is Cadence.WEEKLY else monthly
                sent += await self._send(subscription, period)
            if len(due) < BATCH:
                return sent
            after = due[-1].id

    async def _send(self, subscription: ReportSubscription, period: str) -> int:
        now = self._clock.now()
        async with self._work() as uow:
            owner = await self._owner(uow, subscription)
            if owner is None:
                log.info("scheduled report %s ended: its owner can no longer have it",
                         subscription.id)
                await uow.report_subscriptions.delete(subscription.id)
                await uow.commit()
                return 0
            if not await uow.report_subscriptions.claim(subscription.id, period, now):
                return 0  # another process sent it
            user, organisation = owner
            expires = now + self._policy.link_ttl
            link = (f"{self._policy.base_url.rstrip('/')}/reports/scheduled/"
                    f"{self._token(subscription.id, period, expires)}")
            await uow.outbox.add(self._composer.report_link(
                self._ids.new_id(), user.email, user.name, subscription.kind.label,
                organisation, subscription.cadence.value, subscription.format.value.upper(),
                link, expires, now))
            uow.events.record(MailQueued(count=1))
            await uow.commit()
        return 1

    async def _owner(self, uow: UnitOfWork, subscription: ReportSubscription
                     ) -> tuple[User, str] | None:
        """The owner and the organisation's name, while the owner may still have it."""
        user = await uow.users.get(subscription.user_id, EVERYTHING)
        if user is None or not user.active or user.deleted_at is not None:
            return None
        home = await uow.cabinets.get(user.cabinet_id, EVERYTHING)
        if home is None:
            return None
        principal = Principal.of(user, home)
        if not access.may_subscribe_reports(principal):
            return None
        if subscription.cabinet_id is None:
            return (user, home.name if not access.sees_everyone(principal)
                    else "All customers")
        cabinet = await uow.cabinets.get(subscription.cabinet_id,
                                         access.visible_scope(principal))
        return (user, cabinet.name) if cabinet is not None else None

    async def run_forever(self, interval: float) -> None:
        await repeat("scheduled reports", self.send_due, interval)

    # ---- the link

    def _token(self, subscription_id: str, period: str, expires: datetime) -> str:
        payload = f"{subscription_id}.{period}.{int(expires.timestamp())}"
        return f"{payload}.{self._mac(payload)}"

    def _mac(self, payload: str) -> str:
        return hmac.new(self._policy.secret, payload.encode(), hashlib.sha256).hexdigest()[:32]

    async def open_link(self, actor: Principal, token: str
                        ) -> tuple[ReportQuery, ReportFormat]:
        """What a link's report is, for its owner while it lasts; anything else is 404."""
        refused = NotFound("This report link is not valid: it has run out or is not yours. "
                           "The next one comes with the next e-mail.")
        payload, _, mac = token.rpartition(".")
        subscription_id, _, rest = payload.partition(".")
        period, _, expires = rest.rpartition(".")
        if not (mac and expires.isdigit() and period and hmac.compare_digest(
                mac, self._mac(payload))):
            raise refused
        if datetime.fromtimestamp(int(expires), UTC) < self._clock.now():
            raise refused
        async with self._work(read_only=True) as uow:
            found = await uow.report_subscriptions.get(subscription_id)
        if found is None or found.user_id != actor.user_id:
            raise refused
        return query_of(found), found.format
