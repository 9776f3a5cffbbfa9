"""Two `portal serve` processes on different ports sharing PostgreSQL, a Redis and an SMTP
server, as a production deployment runs them: a notification made through one reaches a
live stream on the other, the expiry job reminds once, the outbox sends each e-mail once,
and with Redis killed the API keeps answering and the streams catch up.

The Redis is one of the test's own (redis-server on a free port), so that it can be killed.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import psycopg2
import pytest
from aiosmtpd.controller import Controller

from tests.api.test_notifications import Event, read_events
from tests.contract.test_mail import Inbox
from tests.feed import purchase, signed
from tests.live import LivePortal, RedisServer, free_port, live_portal, redis_server
from tests.pg import temporary_database

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

STAFF = ("admin@hornsandhooves.example", "demo-staff-admin")
ALICE = ("admin@acme.example", "demo-acme-admin")
BOB = ("user@acme.example", "demo-acme-user")
GRACE = ("admin@globex.example", "demo-globex-admin")


@dataclass
class Cluster:
    a: LivePortal
    b: LivePortal
    redis: RedisServer
    inbox: Inbox
    dsn: str

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg2.connect(self.dsn) as conn, conn.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())

    def logs(self) -> str:
        return self.a.log.read_text() + self.b.log.read_text()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    data_dir = tmp_path_factory.mktemp("cluster")
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        with temporary_database("portal_cluster") as dsn, redis_server(data_dir) as redis:
            shared = {
                "PORTAL_STORAGE__ADAPTER": "postgres", "PORTAL_STORAGE__DSN": dsn,
                "PORTAL_EVENT_BUS__ADAPTER": "redis", "PORTAL_EVENT_BUS__URL": redis.url,
                "PORTAL_EVENT_BUS__CHANNEL": f"cluster-{uuid.uuid4().hex}",
                "PORTAL_MAIL__ADAPTER": "smtp", "PORTAL_MAIL__SMTP__HOST": "127.0.0.1",
                "PORTAL_MAIL__SMTP__PORT": str(smtp.port),
                "PORTAL_MAIL__SMTP__SECURITY": "none", "PORTAL_MAIL__OUTBOX_INTERVAL": "1",
                "PORTAL_NOTIFICATIONS__REMINDER_INTERVAL": "1",
                "PORTAL_WEB__SECRET_KEY": "cluster-test-secret"}
            # One data folder: the signing keys the first makes, the second reads.
            with live_portal(data_dir, env=shared) as a, \
                    live_portal(data_dir, demo=False, env=shared) as b:
                yield Cluster(a, b, redis, inbox, dsn)
    finally:
        smtp.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


async def sign_in(http: aiohttp.ClientSession, portal: LivePortal,
                  account: tuple[str, str]) -> dict[str, str]:
    async with http.post(f"{portal.url}/api/v1/jwt",
                         json={"email": account[0], "password": account[1]}) as answer:
        assert answer.status == 200, await answer.text()
        token = (await answer.json())["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def cabinet_of(http: aiohttp.ClientSession, portal: LivePortal,
                     headers: dict[str, str]) -> str:
    async with http.get(f"{portal.url}/api/v1/me", headers=headers) as answer:
        return str((await answer.json())["cabinet"]["id"])


async def announce(http: aiohttp.ClientSession, portal: LivePortal, headers: dict[str, str],
                   title: str, cabinet_id: str | None = None) -> int:
    body = {"title": title, "body": "From the cluster test.",
            **({"cabinet_id": cabinet_id} if cabinet_id else {})}
    async with http.post(f"{portal.url}/api/v1/notifications", json=body,
                         headers=headers) as answer:
        assert answer.status == 201, await answer.text()
        return int((await answer.json())["recipients"])


async def titles(http: aiohttp.ClientSession, portal: LivePortal,
                 headers: dict[str, str]) -> list[str]:
    async with http.get(f"{portal.url}/api/v1/notifications?limit=200",
                        headers=headers) as answer:
        assert answer.status == 200, await answer.text()
        return [item["title"] for item in (await answer.json())["items"]]


async def open_stream(http: aiohttp.ClientSession, portal: LivePortal,
                      headers: dict[str, str], last: str | None = None
                      ) -> tuple[aiohttp.ClientResponse, Event]:
    stream = await http.get(f"{portal.url}/api/v1/notifications/stream",
                            headers={**headers, **({"Last-Event-ID": last} if last else {})})
    assert stream.status == 200
    [ready] = await read_events(stream, 1)
    assert ready.event == "ready"
    return stream, ready


async def eventually(check: Any, seconds: float = 20) -> None:
    async with asyncio.timeout(seconds):
        while not await check():
            await asyncio.sleep(0.2)


async def test_a_notification_made_through_one_process_streams_from_the_other(
        cluster: Cluster, http: aiohttp.ClientSession) -> None:
    staff = await sign_in(http, cluster.a, STAFF)
    alice, grace = await sign_in(http, cluster.b, ALICE), await sign_in(http, cluster.b, GRACE)
    acme, globex = await cabinet_of(http, cluster.b, alice), await cabinet_of(http, cluster.b,
                                                                             grace)
    alice_stream, _ = await open_stream(http, cluster.b, alice)
    grace_stream, _ = await open_stream(http, cluster.b, grace)
    try:
        title = f"Maintenance {uuid.uuid4().hex[:6]}"
        assert await announce(http, cluster.a, staff, title, acme) >= 2
        assert await announce(http, cluster.a, staff, f"{title} Globex", globex) >= 1
        [event] = await read_events(alice_stream, 1, seconds=10)
        assert event.event == "announcement" and json.loads(event.data)["title"] == title
        [other] = await read_events(grace_stream, 1, seconds=10)
        assert json.loads(other.data)["title"] == f"{title} Globex"  # never Acme's
    finally:
        alice_stream.close()
        grace_stream.close()


async def test_the_expiry_job_reminds_once_with_two_processes_running_it(
        cluster: Cluster, http: aiohttp.ClientSession) -> None:
    ends = datetime.now(UTC).date() + timedelta(days=7)
    order = uuid.uuid4().hex[:8]
    items = [{"external_id": f"ORD-{order}-{n}", "kind": "license", "product_code": "dbguard",
              "edition": "Enterprise", "seats": 5, "valid_from": "2026-01-01",
              "valid_to": ends.isoformat()} for n in range(4)]
    body, headers = signed(purchase("dbguard", "DEMO-ACME", items=items))
    async with http.post(f"{cluster.b.url}/api/v1/feed/purchases", data=body,
                         headers=headers) as answer:
        assert answer.status == 200, await answer.text()
    alice, bob = await sign_in(http, cluster.a, ALICE), await sign_in(http, cluster.b, BOB)

    async def all_reminded() -> bool:
        return sum("expires in 7 days" in t for t in await titles(http, cluster.a, alice)) >= 4

    await eventually(all_reminded)
    await asyncio.sleep(3)  # both processes run the job every second meanwhile
    for user in (alice, bob):
        reminders = Counter(t for t in await titles(http, cluster.a, user) if "expires" in t)
        assert sum(n for t, n in reminders.items() if t.endswith("in 7 days")) == 4
        assert set(reminders.values()) == {1}, reminders
        # The demo's license that ends in 20 days was found when the first process started.
        assert any(t.endswith("expires in 20 days") for t in reminders)
    runs = [int(n) for n in re.findall(r"expiry reminders: (\d+) documents", cluster.logs())]
    assert sum(runs) == 5  # the demo's one and these four, each by one process


async def test_the_outbox_sends_each_e_mail_once_with_two_workers(
        cluster: Cluster, http: aiohttp.ClientSession) -> None:
    staff_a, staff_b = await sign_in(http, cluster.a, STAFF), await sign_in(http, cluster.b,
                                                                            STAFF)
    told = 0
    for n in range(3):
        told += await announce(http, cluster.a if n % 2 else cluster.b,
                               staff_a if n % 2 else staff_b, f"To everyone {n}")

    async def all_sent() -> bool:
        pending = cluster.query("SELECT count(*) FROM outbox WHERE status = 'pending'")
        return bool(pending[0][0] == 0)

    await eventually(all_sent, 30)
    received = [str(m["Message-ID"]) for m in cluster.inbox.messages]
    duplicates = [mid for mid, n in Counter(received).items() if n > 1]
    assert duplicates == []
    sent = {row[0] for row in cluster.query(
        "SELECT message_id FROM outbox WHERE status = 'sent'")}
    assert set(received) == sent
    assert sum("To everyone" in str(m["Subject"]) for m in cluster.inbox.messages) == told


async def test_with_redis_killed_the_api_answers_and_streams_catch_up(
        cluster: Cluster, http: aiohttp.ClientSession) -> None:
    staff = await sign_in(http, cluster.a, STAFF)
    alice = await sign_in(http, cluster.b, ALICE)
    acme = await cabinet_of(http, cluster.b, alice)
    held, ready = await open_stream(http, cluster.b, alice)
    try:
        cluster.redis.kill()
        assert await announce(http, cluster.a, staff, "While Redis is down", acme) >= 2
        for portal in (cluster.a, cluster.b):
            assert "While Redis is down" in await titles(http, portal, alice)
        # A client that reconnects from the last event it saw gets what it missed.
        again, _ = await open_stream(http, cluster.b, alice, last=ready.id)
        [missed] = await read_events(again, 1)
        assert json.loads(missed.data)["title"] == "While Redis is down"
        again.close()

        cluster.redis.start()
        # The stream that stayed open catches up once its process hears Redis again...
        [caught_up] = await read_events(held, 1, seconds=20)
        assert json.loads(caught_up.data)["title"] == "While Redis is down"
        assert caught_up.id == missed.id
        # ...and live delivery across processes is back.
        await announce(http, cluster.a, staff, "Redis is back", acme)
        [live] = await read_events(held, 1, seconds=10)
        assert json.loads(live.data)["title"] == "Redis is back"
    finally:
        held.close()
        if not cluster.redis.running:
            cluster.redis.start()
    assert "lost Redis" in cluster.logs() and "listening on Redis again" in cluster.logs()
