"""Faults under two `portal serve` processes, on servers this suite starts for itself: a
PostgreSQL cluster of its own (stopped, crashed, started again), a Redis of its own (frozen),
an SMTP server of its own (down, slow). What a fault test counts is what arrived: every
e-mail once (the one documented exception: a process killed in the middle of a send may
send that message once more, with the same Message-ID), every change either whole or not
there, no answer a 500.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import TEST_ENV
from tests.contract.test_mail import Inbox
from tests.contract.test_outbox import SmtpServer as ContractSmtpServer
from tests.live import PORTAL, LivePortal, RedisServer, free_port, live_portal, redis_server

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

STAFF = ("admin@hornsandhooves.example", "demo-staff-admin")
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), Path("/usr/bin"))


class PgServer:
    """A PostgreSQL cluster of the test's own, on a free port: stopped, crashed and started
    again at will (the shared server on 5432 is never touched)."""

    def __init__(self) -> None:
        self.port = free_port()
        # Not under pytest's folder: its parents are closed to the postgres user.
        self.home = Path(tempfile.mkdtemp(prefix="portal-faults-pg-"))
        self.folder = self.home / "data"
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        # PostgreSQL refuses to run as root: as its own user when this is root.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.STDOUT)

    def init(self) -> None:
        self.folder.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.home, "postgres")
            shutil.chown(self.folder, "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.folder), "-A", "trust", "-U",
                  "postgres", "--no-sync")

    def start(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.folder), "-w", "-l",
                  str(self.folder / "server.log"), "-o",
                  f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off", "start")

    def stop(self, mode: str = "fast") -> None:
        """`fast` shuts down cleanly; `immediate` is a crash (recovery at the next start)."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.folder), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)


class SlowableInbox(Inbox):
    """An SMTP server's handler that answers the end of the data after `delay` seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.delay = 0.0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


class SmtpServer(ContractSmtpServer):
    """The outbox contract's server, with a handler that can be slowed."""

    def __init__(self) -> None:
        self.slowable = SlowableInbox()
        super().__init__(self.slowable)

    def copies(self, subject_prefix: str) -> Counter[str]:
        return Counter(str(m["Message-ID"]) for m in self.inbox.messages
                       if str(m["Subject"]).startswith(subject_prefix))


@dataclass
class Faulty:
    a: LivePortal
    b: LivePortal
    pg: PgServer
    redis: RedisServer
    smtp: SmtpServer
    env: dict[str, str]
    data_dir: Path


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faulty]:
    folder = tmp_path_factory.mktemp("faults")
    pg, smtp = PgServer(), SmtpServer()
    pg.init()
    pg.start()
    smtp.start()
    try:
        with redis_server(folder) as redis:
            env = {
                "PORTAL_STORAGE__ADAPTER": "postgres", "PORTAL_STORAGE__DSN": pg.dsn,
                "PORTAL_STORAGE__TIMEOUT_SECONDS": "2",
                "PORTAL_EVENT_BUS__ADAPTER": "redis", "PORTAL_EVENT_BUS__URL": redis.url,
                "PORTAL_EVENT_BUS__CHANNEL": f"faults-{uuid.uuid4().hex}",
                "PORTAL_MAIL__ADAPTER": "smtp", "PORTAL_MAIL__SMTP__HOST": "127.0.0.1",
                "PORTAL_MAIL__SMTP__PORT": str(smtp.port),
                "PORTAL_MAIL__SMTP__SECURITY": "none",
                "PORTAL_MAIL__SMTP__TIMEOUT_SECONDS": "0.5",
                "PORTAL_MAIL__SMTP__DATA_TIMEOUT_SECONDS": "2",
                "PORTAL_MAIL__OUTBOX_INTERVAL": "0.5",
                "PORTAL_WEB__SECRET_KEY": "faults-test-secret"}
            data_dir = folder / "portal"
            with live_portal(data_dir, env=env) as a, \
                    live_portal(data_dir, demo=False, env=env) as b:
                yield Faulty(a, b, pg, redis, smtp, env, data_dir)
    finally:
        smtp.stop()
        pg.stop("immediate")
        pg.remove()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


async def staff(http: aiohttp.ClientSession, portal: LivePortal) -> dict[str, str]:
    async with http.post(f"{portal.url}/api/v1/jwt",
                         json={"email": STAFF[0], "password": STAFF[1]}) as answer:
        assert answer.status == 200, await answer.text()
        return {"Authorization": f"Bearer {(await answer.json())['access_token']}"}


async def announce(http: aiohttp.ClientSession, portal: LivePortal, headers: dict[str, str],
                   title: str) -> int:
    """An announcement to everyone (the demo's five users): that many e-mails."""
    async with http.post(f"{portal.url}/api/v1/notifications", headers=headers, json={
            "title": title, "body": "From the fault suite."}) as answer:
        assert answer.status == 201, await answer.text()
        return int((await answer.json())["recipients"])


async def until(check: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not so within {seconds} s"
        await asyncio.sleep(0.2)


def each_once(smtp: SmtpServer, prefix: str, expected: int) -> bool:
    copies = smtp.copies(prefix)
    return len(copies) == expected and all(n == 1 for n in copies.values())


async def test_mail_goes_out_once_through_smtp_down_then_slow(
        faulty: Faulty, http: aiohttp.ClientSession) -> None:
    headers = await staff(http, faulty.a)
    faulty.smtp.stop()
    prefix = f"Down {uuid.uuid4().hex[:6]}"
    sent = sum([await announce(http, faulty.a, headers, f"{prefix} {n}") for n in range(3)])
    await asyncio.sleep(2)  # both processes try, fail and back off meanwhile
    faulty.smtp.slowable.delay = 0.4  # slower than the step timeout, within the data's
    faulty.smtp.start()
    await until(lambda: len(faulty.smtp.copies(prefix)) == sent, seconds=90)
    await asyncio.sleep(2)  # anything sent twice would arrive by now
    faulty.smtp.slowable.delay = 0.0
    assert each_once(faulty.smtp, prefix, sent), faulty.smtp.copies(prefix)


async def test_a_frozen_redis_holds_no_request(faulty: Faulty,
                                               http: aiohttp.ClientSession) -> None:
    headers = await staff(http, faulty.b)
    faulty.redis.freeze()
    try:
        prefix = f"Frozen {uuid.uuid4().hex[:6]}"
        started = time.monotonic()
        sent = await announce(http, faulty.b, headers, prefix)
        assert time.monotonic() - started < 1.5  # not waiting out Redis's socket
    finally:
        faulty.redis.thaw()
    # Stored first: the other process lists it, and the mail goes out once.
    async with http.get(f"{faulty.a.url}/api/v1/notifications?limit=20",
                        headers=await staff(http, faulty.a)) as answer:
        assert prefix in [n["title"] for n in (await answer.json())["items"]]
    await until(lambda: each_once(faulty.smtp, prefix, sent))


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_a_stopped_or_crashed_database_answers_503_and_loses_nothing(
        faulty: Faulty, http: aiohttp.ClientSession, mode: str) -> None:
    headers_a, headers_b = await staff(http, faulty.a), await staff(http, faulty.b)
    prefix = f"Before {mode} {uuid.uuid4().hex[:6]}"
    faulty.smtp.stop()  # the mail of this announcement waits in the outbox...
    sent = await announce(http, faulty.a, headers_a, prefix)
    faulty.pg.stop(mode)  # ...while the database goes away
    try:
        for portal, headers in ((faulty.a, headers_a), (faulty.b, headers_b)):
            async with http.get(f"{portal.url}/api/v1/me", headers=headers) as answer:
                assert answer.status == 503, await answer.text()
                assert answer.headers["Retry-After"]
                assert (await answer.json())["type"] == "/problems/service-unavailable"
            async with http.post(f"{portal.url}/api/v1/notifications", headers=headers,
                                 json={"title": "lost?", "body": "x"}) as answer:
                assert answer.status == 503
    finally:
        faulty.pg.start()
        faulty.smtp.start()

    async def answering() -> bool:
        async with http.get(f"{faulty.a.url}/api/v1/me", headers=headers_a) as one, \
                http.get(f"{faulty.b.url}/api/v1/me", headers=headers_b) as two:
            return one.status == two.status == 200

    deadline = time.monotonic() + 30
    while not await answering():
        assert time.monotonic() < deadline, "the portals did not come back"
        await asyncio.sleep(0.5)
    await until(lambda: each_once(faulty.smtp, prefix, sent), seconds=90)
    after = f"After {mode} {uuid.uuid4().hex[:6]}"
    more = await announce(http, faulty.b, headers_b, after)
    await until(lambda: each_once(faulty.smtp, after, more))
    async with http.get(f"{faulty.a.url}/api/v1/notifications?limit=100",
                        headers=headers_a) as answer:
        listed = [n["title"] for n in (await answer.json())["items"]]
    assert "lost?" not in listed  # refused while down: not half there either


async def test_a_portal_killed_mid_send_loses_no_mail(faulty: Faulty,
                                                      http: aiohttp.ClientSession) -> None:
    """A third process is killed (SIGKILL) while it sends; the others send the rest.
    Lost: none. Sent twice: at most the one it was sending, with the same Message-ID."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(TEST_ENV, **faulty.env, PORTAL_DATA_DIR=str(faulty.data_dir),
               PORTAL_BASE_URL=f"http://127.0.0.1:{port}")
    log = faulty.data_dir / f"doomed-{port}.log"
    with log.open("w") as output:
        doomed = subprocess.Popen([PORTAL, "serve", "--host", "127.0.0.1", "--port",
                                   str(port)], env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        from tests.live import wait_until_healthy

        wait_until_healthy(f"http://127.0.0.1:{port}", doomed, log)
        portal = LivePortal(f"http://127.0.0.1:{port}", env, log)
        headers = await staff(http, portal)
        faulty.smtp.slowable.delay = 0.5
        prefix = f"Killed {uuid.uuid4().hex[:6]}"
        sent = sum([await announce(http, portal, headers, f"{prefix} {n}")
                    for n in range(2)])
        await asyncio.sleep(0.8)  # it has begun sending
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        # What it had leased waits for its lease (the mailer's longest send, and more).
        await until(lambda: len(faulty.smtp.copies(prefix)) == sent, seconds=120)
        await asyncio.sleep(2)
        copies = faulty.smtp.copies(prefix)
        assert len(copies) == sent  # nothing lost
        assert sum(n - 1 for n in copies.values()) <= 1, copies  # the documented case
    finally:
        faulty.smtp.slowable.delay = 0.0
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait()
