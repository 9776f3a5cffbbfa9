"""The outbox on both databases, and its worker against a real SMTP server (aiosmtpd):
retries with backoff while the server is down, no retry after a 5xx, nothing lost when a
process dies between the commit and the send, and every message sent once when several
workers run."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from adapters.smtp import SmtpMailer
from app.domain.outbox import OutboxMessage, OutboxStatus, retry_delay
from app.services.mail import OutboxPolicy, OutboxWorker
from tests.contract.test_mail import Inbox
from tests.contract.test_storage import Adapter, storage
from tests.fakes import FakeMailer
from tests.live import free_port
from tests.pg import temporary_database
from tests.world import SettingsFor

__all__ = ["storage"]  # the fixture, shared with test_storage


@pytest.fixture(scope="module")
def pg_dsn() -> Iterator[str]:
    """A database of this module's own: workers here claim whatever mail is due, and the
    rest of the suite leaves plenty of it in the session's shared database."""
    with temporary_database("portal_outbox") as dsn:
        yield dsn

T0 = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


def queued(n: int, recipient: str = "ann@acme.test", at: datetime = T0) -> list[OutboxMessage]:
    batch = uuid.uuid4().hex[:8]
    return [OutboxMessage(id=f"{batch}-{i}", message_id=f"<{batch}-{i}@portal.test>",
                          recipient=recipient, subject=f"Message {i}", text_body=f"Body {i}",
                          html_body=f"<p>Body {i}</p>", created_at=at, next_attempt_at=at)
            for i in range(n)]


async def put(storage: Adapter, messages: list[OutboxMessage]) -> None:
    async with storage.unit_of_work() as uow:
        for message in messages:
            await uow.outbox.add(message)
        await uow.commit()


async def state(storage: Adapter, message: OutboxMessage) -> OutboxMessage:
    async with storage.unit_of_work() as uow:
        found = await uow.outbox.get(message.message_id)
    assert found is not None
    return found


class SmtpServer:
    """aiosmtpd on a fixed free port, stopped and started again at will."""

    def __init__(self, inbox: Inbox | None = None) -> None:
        self.port = free_port()
        self.inbox = inbox or Inbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def mailer(self) -> SmtpMailer:
        return SmtpMailer("127.0.0.1", self.port, "none", "", "", 3)

    def received(self, recipient_prefix: str) -> list[Any]:
        return [m["Message-ID"] for m in self.inbox.messages
                if str(m["To"]).startswith(recipient_prefix)]


@pytest.fixture
def smtp() -> Any:
    server = SmtpServer()
    yield server
    server.stop()


async def test_a_claim_leases_what_is_due_and_nobody_else_gets_it(storage: Adapter) -> None:
    # The PostgreSQL database is shared by the session: a moment long before anyone
    # else's mail keeps other tests' messages out of these claims.
    base = datetime(1991, 1, 1, tzinfo=UTC)
    due, later = queued(3, at=base), queued(1, at=base + timedelta(hours=1))
    await put(storage, due + later)
    await put(storage, due[:1])  # the same Message-ID again: still one
    async with storage.unit_of_work() as uow:
        first = await uow.outbox.claim(base, base + timedelta(minutes=2), 10)
        await uow.commit()
    mine = {m.message_id for m in due}
    assert {m.message_id for m in first} == mine  # not the later one, no duplicate
    async with storage.unit_of_work() as uow:
        again = await uow.outbox.claim(base + timedelta(minutes=1),
                                       base + timedelta(minutes=3), 10)
        await uow.commit()
    assert again == []  # leased to the first claimer
    async with storage.unit_of_work() as uow:  # the lease ran out: a crashed worker's mail
        expired = await uow.outbox.claim(base + timedelta(minutes=5),
                                         base + timedelta(minutes=7), 10)
        await uow.commit()
    assert {m.message_id for m in expired} == mine


async def test_many_messages_queue_at_once_and_round_trip(storage: Adapter) -> None:
    base = datetime(1985, 1, 1, tzinfo=UTC)  # before every other test's mail: only ours due
    messages = queued(1100, at=base)  # more than two statements' worth
    messages[7].html_body = None
    # One unit of work, never committed: the shared database keeps none of this.
    async with storage.unit_of_work() as uow:
        await uow.outbox.add(*messages, messages[0])  # a repeated Message-ID: still one
        assert await uow.outbox.get(messages[7].message_id) == messages[7]
        assert await uow.outbox.get(messages[1099].message_id) == messages[1099]
        claimed = await uow.outbox.claim(base, base + timedelta(minutes=2), 2000)
    assert sorted(m.message_id for m in claimed) == sorted(m.message_id for m in messages)


async def test_messages_that_share_a_text_round_trip_whole(storage: Adapter) -> None:
    base = datetime(1986, 1, 1, tzinfo=UTC)
    shared = [replace(m, subject="Same", text_body="Same text for all.",
                      html_body="<p>Same</p>") for m in queued(3, at=base)]
    plain = [replace(m, subject="Same", text_body="Same text for all.", html_body=None)
             for m in queued(2, at=base)]
    alone = queued(1, at=base)
    # One unit of work, never committed: the later tests' claims find none of these.
    async with storage.unit_of_work() as uow:
        await uow.outbox.add(*shared, *plain, *alone)
        await uow.outbox.add(*shared[:2])  # again, as a retried transaction would: no change
        for message in [*shared, *plain, *alone]:
            assert await uow.outbox.get(message.message_id) == message
        claimed = await uow.outbox.claim(base, base + timedelta(minutes=2), 10)
    assert {m.message_id: m for m in claimed} == {m.message_id: m for m in
                                                  [*shared, *plain, *alone]}


async def test_sent_and_failed_messages_forget_their_text(storage: Adapter) -> None:
    base = datetime(1987, 1, 1, tzinfo=UTC)
    alone, failing = queued(2, at=base)
    shared = [replace(m, subject="Same", text_body="Set it: https://portal.test/set?token=x",
                      html_body="<a>link</a>") for m in queued(2, at=base)]  # one text
    await put(storage, [alone, failing, *shared])
    async with storage.unit_of_work() as uow:
        for message in (alone, shared[0]):
            await uow.outbox.mark_sent(message.message_id, base)
        await uow.outbox.mark_failed(failing.message_id, 3, "550 no such user")
        await uow.outbox.mark_sent(shared[1].message_id, base)
        await uow.commit()
    for message, status in ((alone, OutboxStatus.SENT), (failing, OutboxStatus.FAILED),
                            (shared[0], OutboxStatus.SENT), (shared[1], OutboxStatus.SENT)):
        done = await state(storage, message)
        assert (done.text_body, done.html_body, done.status) == ("", None, status)
        assert (done.recipient, done.subject, done.created_at) == (
            message.recipient, message.subject, message.created_at)


async def test_recent_mail_newest_first_and_by_recipient(storage: Adapter) -> None:
    base = datetime(2990, 1, 1, tzinfo=UTC)  # after everything else in this database
    tag = uuid.uuid4().hex[:6]
    older = queued(2, recipient=f"Ann 100%_{tag} <ann@acme.test>", at=base)
    newer = queued(1, recipient=f"bob-{tag}@acme.test", at=base + timedelta(seconds=1))
    await put(storage, older + newer)
    async with storage.unit_of_work() as uow:
        latest = await uow.outbox.list_recent(3)
        by_name = await uow.outbox.list_recent(10, f"ANN 100%_{tag}")
        wildcard = await uow.outbox.list_recent(10, f"100%%_{tag}")  # % and _ are literal
        by_address = await uow.outbox.list_recent(10, f"bob-{tag}@")
    assert [m.message_id for m in latest][:1] == [newer[0].message_id]
    assert sorted(m.message_id for m in by_name) == sorted(m.message_id for m in older)
    assert wildcard == [] and [m.message_id for m in by_address] == [newer[0].message_id]


async def test_concurrent_claims_never_share_a_message(storage: Adapter) -> None:
    base = datetime(1992, 1, 1, tzinfo=UTC)
    messages = queued(20, at=base)
    await put(storage, messages)

    async def claim() -> set[str]:
        async with storage.unit_of_work() as uow:
            got = await uow.outbox.claim(base, base + timedelta(minutes=2), 7)
            await asyncio.sleep(0.05)  # hold the rows while the others claim
            await uow.commit()
        return {m.message_id for m in got}

    async with asyncio.timeout(20):
        results = await asyncio.gather(*(claim() for _ in range(4)))
    seen = [m for found in results for m in found]
    assert len(seen) == len(set(seen))  # none twice
    assert {m.message_id for m in messages} <= set(seen)  # and all of them


async def test_smtp_down_then_up_delivers_each_message_once(storage: Adapter, smtp: Any) -> None:
    prefix = f"down-{uuid.uuid4().hex[:6]}"
    messages = queued(3, recipient=f"{prefix}@acme.test", at=T0 - timedelta(days=7300))
    await put(storage, messages)
    clock = Clock()
    worker = OutboxWorker(storage, smtp.mailer(), clock, "portal@vendor.test",
                          OutboxPolicy(batch=100, base_delay=10, max_delay=60))
    await worker.run_once()  # the server is down
    failed = await state(storage, messages[0])
    assert failed.status is OutboxStatus.PENDING and failed.attempts == 1
    assert failed.next_attempt_at is not None and failed.next_attempt_at > T0
    assert failed.last_error
    await worker.run_once()  # not due yet: left alone
    assert (await state(storage, messages[0])).attempts == 1
    smtp.start()
    clock.at = T0 + timedelta(minutes=5)
    await worker.run_once()
    await worker.run_once()
    assert sorted(smtp.received(prefix)) == sorted(m.message_id for m in messages)
    sent = await state(storage, messages[0])
    assert sent.status is OutboxStatus.SENT and sent.attempts == 2 and sent.sent_at
    # What the metrics report of this worker (PostgreSQL's database is shared by the
    # session: other tests' due mail may be sent too, so at least these).
    figures = worker.stats()
    assert figures["retried"] >= 3 and figures["sent"] >= 3


async def test_a_5xx_fails_the_message_for_good(storage: Adapter, smtp: Any) -> None:
    [message] = queued(1, recipient="nobody@acme.test", at=T0 - timedelta(days=7300))
    await put(storage, [message])
    smtp.start()
    clock = Clock()
    worker = OutboxWorker(storage, smtp.mailer(), clock, "portal@vendor.test", OutboxPolicy())
    await worker.run_once()
    failed = await state(storage, message)
    assert failed.status is OutboxStatus.FAILED and "550" in (failed.last_error or "")
    assert worker.stats()["failed"] >= 1
    clock.at = T0 + timedelta(days=1)
    await worker.run_once()
    assert (await state(storage, message)).attempts == 1  # never tried again


async def test_the_backlog_counts_waiting_mail_and_its_oldest_retries_or_not(
        storage: Adapter) -> None:
    async with storage.unit_of_work(read_only=True) as uow:
        before, _ = await uow.outbox.backlog()
    base = datetime(1971, 1, 1, tzinfo=UTC)  # older than any other test's mail
    waiting = queued(3, at=base)
    await put(storage, waiting)
    async with storage.unit_of_work() as uow:
        await uow.outbox.mark_sent(waiting[0].message_id, T0)
        await uow.outbox.mark_failed(waiting[1].message_id, 1, "550 no such user")
        # Tried and put off: still waiting since it was queued (what an alert watches).
        await uow.outbox.retry_later(waiting[2].message_id, 1, base + timedelta(hours=1), "421")
        await uow.commit()
    async with storage.unit_of_work(read_only=True) as uow:
        count, oldest = await uow.outbox.backlog()
    assert count == before + 1 and oldest == base
    worker = OutboxWorker(storage, FakeMailer(), Clock(base + timedelta(minutes=3)),
                          "portal@vendor.test", OutboxPolicy())
    await worker.measure()
    assert worker.stats()["waiting"] == count
    assert worker.stats()["oldest_age_seconds"] == 180
    async with storage.unit_of_work() as uow:  # none left due for the other tests' workers
        await uow.outbox.mark_sent(waiting[2].message_id, T0)
        await uow.commit()


async def test_too_many_temporary_failures_give_up(storage: Adapter) -> None:
    [message] = queued(1, at=T0 - timedelta(days=7300))
    await put(storage, [message])
    clock = Clock()
    worker = OutboxWorker(storage, SmtpMailer("127.0.0.1", free_port(), "none", "", "", 1),
                          clock, "portal@vendor.test",
                          # A batch for all that is due: the other tests' mail in this
                          # module's database may come first, and ours must be tried each round.
                          OutboxPolicy(max_attempts=3, batch=1000))
    for hour in range(5):
        clock.at = T0 + timedelta(hours=hour * 2)
        await worker.run_once()
    gave_up = await state(storage, message)
    assert gave_up.status is OutboxStatus.FAILED and gave_up.attempts == 3


async def test_two_workers_send_every_message_once(storage: Adapter, smtp: Any) -> None:
    prefix = f"pair-{uuid.uuid4().hex[:6]}"
    messages = queued(30, recipient=f"{prefix}@acme.test", at=T0 - timedelta(days=7300))
    await put(storage, messages)
    smtp.start()
    workers = [OutboxWorker(storage, smtp.mailer(), Clock(), "portal@vendor.test",
                            OutboxPolicy(batch=4)) for _ in range(2)]

    async def drain(worker: OutboxWorker) -> None:
        while await worker.run_once():
            pass

    async with asyncio.timeout(60):
        await asyncio.gather(*(drain(worker) for worker in workers))
    got = smtp.received(prefix)
    assert sorted(got) == sorted(m.message_id for m in messages)  # all, none twice


def test_retry_delays_grow_and_stay_capped() -> None:
    import random

    jitter = random.Random(7)
    delays = [retry_delay(n, base=5, cap=300, jitter=jitter).total_seconds()
              for n in range(1, 10)]
    assert 2.5 <= delays[0] <= 5 and 5 <= delays[1] <= 10
    assert all(150 <= d <= 300 for d in delays[-3:])


async def test_mail_committed_before_a_crash_is_sent_by_the_next_process(
        settings_for: SettingsFor) -> None:
    """The announcement, its notifications and its e-mail commit together; the process
    dies before sending; the next one started on the same data sends each e-mail once."""
    import email as parser
    import email.policy

    from app.container import open_services
    from app.domain.cabinets import CabinetKind
    from app.domain.notifications import NotificationKind, Preference
    from app.domain.roles import Role
    from app.domain.users import SYSTEM, Principal
    from app.services.notifications import Audience

    settings = settings_for("sqlite")
    async with open_services(settings) as first:
        cabinet = await first.cabinets.create(SYSTEM, "Mailed Ltd", CabinetKind.CUSTOMER, None)
        users = [await first.users.create_with_password(
            SYSTEM, cabinet.id, f"{name}@mailed.test", name.title(), Role.CUSTOMER_USER,
            "correct horse battery") for name in ("ann", "bob", "cid")]
        bob = users[1]
        await first.notifications.set_preferences(
            Principal(bob.id, bob.email, bob.role, cabinet.id, cabinet.path),
            {NotificationKind.ANNOUNCEMENT: Preference(in_app=True, email=False)})
        told = await first.notifications.announce(SYSTEM, "Maintenance", "Sunday night.",
                                                  "/licenses", Audience(cabinet_id=cabinet.id))
        assert told == 3
    mail = settings.data_dir / "mail"
    assert not list(mail.glob("*.eml"))  # "crashed" before sending

    async with open_services(settings) as second:
        assert await second.outbox.run_once() == 2  # ann and cid; bob wants no e-mail
        assert await second.outbox.run_once() == 0
    sent = [parser.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in sorted(mail.glob("*.eml"))]
    assert sorted(str(m["To"]) for m in sent) == ["Ann <ann@mailed.test>",
                                                   "Cid <cid@mailed.test>"]
    html = sent[0].get_body(preferencelist=("html",))
    text = sent[0].get_body(preferencelist=("plain",))
    assert html is not None and "Open in the portal" in html.get_content()
    assert f"{settings.base_url}/licenses" in html.get_content()
    assert text is not None and "Sunday night." in text.get_content()
    assert sent[0]["Subject"] == "Maintenance"


class SlowInbox(Inbox):
    """Answers the end of each message's data only after `delay` seconds (RFC 5321 allows
    the server ten minutes for it)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


async def test_a_slow_server_gets_each_message_once_from_two_workers(storage: Adapter) -> None:
    from adapters.system import SystemClock

    inbox, port = SlowInbox(delay=0.6), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    prefix = f"slow-{uuid.uuid4().hex[:6]}"
    messages = queued(6, recipient=f"{prefix}@acme.test", at=T0 - timedelta(days=7300))
    await put(storage, messages)
    # Each step may take 0.3 s but the end of the data 5: the server's 0.6 s is no failure.
    workers = [OutboxWorker(storage, SmtpMailer("127.0.0.1", port, "none", "", "", 0.3,
                                                data_timeout_seconds=5),
                            SystemClock(), "portal@vendor.test", OutboxPolicy(batch=50))
               for _ in range(2)]
    try:
        async with asyncio.timeout(60):
            await asyncio.gather(*(worker.run_once() for worker in workers))
    finally:
        controller.stop()
    got = [m["Message-ID"] for m in inbox.messages if str(m["To"]).startswith(prefix)]
    assert sorted(got) == sorted(m.message_id for m in messages)  # each once, none twice
    for message in messages:
        assert (await state(storage, message)).status is OutboxStatus.SENT


async def test_a_message_is_leased_for_longer_than_its_send_can_take(storage: Adapter) -> None:
    """While a send that may take 900 s runs, another worker that looks 800 s later does not
    get the message; one that looks after the lease would (its sender died)."""
    from adapters.system import SystemClock
    from ports.mail import Email

    prefix = f"lease-{uuid.uuid4().hex[:6]}"
    [message] = queued(1, recipient=f"{prefix}@acme.test", at=T0 - timedelta(days=7300))
    await put(storage, [message])
    seen: dict[str, bool] = {}

    async def another_worker_gets_it(after: timedelta) -> bool:
        later = datetime.now(UTC) + after
        async with storage.unit_of_work() as uow:  # never committed: only a look
            claimed = await uow.outbox.claim(later, later + timedelta(minutes=1), 10_000)
        return message.message_id in {m.message_id for m in claimed}

    class Measuring:
        longest_send = 900.0

        async def send(self, email: Email) -> None:
            if prefix in email.to:
                seen["800 s on"] = await another_worker_gets_it(timedelta(seconds=800))
                seen["an hour on"] = await another_worker_gets_it(timedelta(hours=1))

        async def probe(self) -> str:
            return "measuring"

    worker = OutboxWorker(storage, Measuring(), SystemClock(), "portal@vendor.test",
                          OutboxPolicy(batch=10_000))
    while await worker.run_once():
        pass
    assert seen == {"800 s on": False, "an hour on": True}
