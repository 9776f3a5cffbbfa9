"""Benchmark: one portal process holding 5,000 live notification streams (SSE), its memory
per stream, and how long an announcement to all 5,000 users takes to reach every one.

Run on demand (not part of the suite):  .venv/bin/python -m tests.bench.bench_sse [N]
Makes a PostgreSQL database of its own (127.0.0.1:5432) with one customer cabinet of N
users (default 5,000), each with a login and an access token, and starts `portal serve` on
it (memory event bus, the outbox worker off so that sending 5,000 e-mails does not run
during the measurement; their outbox rows are still written with the notifications).
A second process (this module with --clients) opens one stream per user over loopback and
notes the time each event arrives (its JSON parsed, its title checked).
Measured: the server's VmRSS with one stream open and with all N, per stream; then, in
ROUNDS rounds, a staff announcement to the cabinet (POST /api/v1/notifications) and each
stream's arrival time of it, from just before the POST; p50 / p99 / max per round and over
all rounds. The POST's transaction stores the announcement once, as a batch for N users, and
it is pushed at once; the process writes the N notifications and N e-mails from the batch a
second later, while the streams stay open (that work is in the run, between the rounds).
Goals: under 20 KB per connection; p99 under 500 ms for the whole fan-out to 5,000 (a bare
aiohttp-sse server on this machine: 13.4 KB per connection, p99 260 ms). The second figure
starts at the POST's answer, which leaves once the batch has committed and the event is out.
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
from aiohttp import ClientSession, ClientTimeout, TCPConnector

from adapters.jwcrypto import JwcryptoTokenCodec, load_signing_key
from adapters.postgres import PostgresStorage
from app.config import load_settings
from app.domain.cabinets import Cabinet, CabinetKind, path_under
from app.domain.roles import Role
from app.domain.sessions import LoginSession
from app.domain.users import User
from app.services.auth import ACCESS
from tests.bench.bench_archive import portal_pid, proc_status
from tests.live import live_portal
from tests.pg import temporary_database

CONNECTIONS = 5000
ROUNDS = 5
CONNECTING_AT_ONCE = 100
KB = 1000
GOAL_BYTES_PER_STREAM = 20 * KB
GOAL_P99 = 0.5  # seconds


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# --- the data: users, logins and tokens, straight into the database ---------------------------

async def populate(dsn: str, data_dir: Path, count: int) -> tuple[str, list[str], str]:
    """The cabinet's id, one access token per user, and a staff token."""
    settings = load_settings(environ={"PORTAL_DATA_DIR": str(data_dir)})
    codec = JwcryptoTokenCodec(
        load_signing_key(None, settings.keys_dir / "token-signing.jwk"),
        settings.auth.issuer, settings.auth.audience)
    storage = PostgresStorage(dsn)
    await storage.open()
    now = datetime.now(UTC)
    vendor_id, customer_id = str(uuid.uuid4()), str(uuid.uuid4())
    vendor = Cabinet(id=vendor_id, name="Bench vendor", kind=CabinetKind.VENDOR,
                     parent_id=None, path=path_under(None, vendor_id), external_id=None,
                     created_at=now, updated_at=now)
    customer = Cabinet(id=customer_id, name="Bench customer", kind=CabinetKind.CUSTOMER,
                       parent_id=None, path=path_under(None, customer_id), external_id=None,
                       created_at=now, updated_at=now)

    def user(n: int, cabinet: Cabinet, role: Role) -> User:
        address = f"user{n}@bench.example"
        return User(id=str(uuid.uuid4()), email=address, email_key=address, name=f"User {n}",
                    role=role, cabinet_id=cabinet.id, active=True, password_hash=None,
                    created_at=now, updated_at=now)

    def token(person: User) -> str:
        session = LoginSession(id=str(uuid.uuid4()), user_id=person.id, created_at=now,
                               expires_at=now + timedelta(days=1))
        sessions.append(session)
        stamp = int(now.timestamp())
        return codec.encode({"sub": person.id, "typ": ACCESS, "sid": session.id,
                             "jti": str(uuid.uuid4()), "role": person.role.value,
                             "cab": person.cabinet_id, "iat": stamp, "exp": stamp + 3600})

    sessions: list[LoginSession] = []
    try:
        await storage.migrate()
        staff = user(0, vendor, Role.STAFF)
        people = [user(n, customer, Role.CUSTOMER_USER) for n in range(1, count + 1)]
        tokens = [token(person) for person in people]
        staff_token = token(staff)
        async with storage.unit_of_work() as uow:
            await uow.cabinets.add(vendor)
            await uow.cabinets.add(customer)
            for person in [staff, *people]:
                await uow.users.add(person)
            for session in sessions:
                await uow.sessions.add(session)
            await uow.commit()
    finally:
        await storage.close()
    return customer_id, tokens, staff_token


# --- the clients' process ----------------------------------------------------------------------

async def clients(url: str, tokens_file: Path) -> None:
    """One stream per token; prints "connected N" once all are open, then for each
    announcement title "arrived <json>" with every stream's arrival time, once all have it."""
    tokens = json.loads(tokens_file.read_text())
    arrivals: dict[str, list[float]] = {}
    opened = 0
    all_open = asyncio.Event()
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)

    def arrived(title: str) -> None:
        arrivals.setdefault(title, []).append(time.time())
        if len(arrivals[title]) == len(tokens):
            print("arrived " + json.dumps({"title": title, "at": arrivals.pop(title)}),
                  flush=True)

    async def stream(http: ClientSession, token: str) -> None:
        nonlocal opened
        async with gate:
            answer = await http.get(f"{url}/api/v1/notifications/stream",
                                    headers={"Authorization": f"Bearer {token}"})
            assert answer.status == 200, await answer.text()
            while not (await answer.content.readline()).startswith(b"event: ready"):
                pass
        opened += 1
        if opened == len(tokens):
            all_open.set()
        # Whatever bytes came, events cut out of them: one wake-up per read, not four
        # readline calls per event, so that the clients' own work weighs less on the times.
        pending = b""
        async for chunk in answer.content.iter_any():
            *events, pending = (pending + chunk).split(b"\r\n\r\n")
            for event in events:
                for line in event.split(b"\r\n"):
                    if line.startswith(b"data: {"):
                        arrived(json.loads(line[6:])["title"])

    connector = TCPConnector(limit=0)
    async with ClientSession(connector=connector, timeout=ClientTimeout(total=None)) as http:
        tasks = [asyncio.create_task(stream(http, token)) for token in tokens]
        started = time.monotonic()
        await all_open.wait()
        # The clients are the measuring instrument: their own collector's pauses (thousands
        # of connections' objects) are not the server's latency.
        gc.collect()
        gc.freeze()
        gc.set_threshold(200_000, 50, 100)
        print(f"connected {opened} in {time.monotonic() - started:.1f} s", flush=True)
        await asyncio.gather(*tasks)


# --- the measurement ----------------------------------------------------------------------------

async def announce(url: str, staff_token: str, cabinet_id: str, title: str) -> float:
    async with ClientSession() as http:
        started = time.monotonic()
        async with http.post(f"{url}/api/v1/notifications",
                             headers={"Authorization": f"Bearer {staff_token}"},
                             json={"title": title, "body": "Benchmark announcement.",
                                   "cabinet_id": cabinet_id}) as answer:
            assert answer.status == 201, await answer.text()
        return time.monotonic() - started


async def next_line(process: subprocess.Popen[str], seconds: float) -> str:
    assert process.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), seconds)
    if not line:
        raise AssertionError(f"the client process ended (exit {process.poll()})")
    return line.strip()


async def measure(count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-sse-") as folder, \
            temporary_database("portal_bench_sse") as dsn:
        data_dir = Path(folder)
        cabinet_id, tokens, staff_token = await populate(dsn, data_dir, count)
        tokens_file = data_dir / "tokens.json"
        tokens_file.write_text(json.dumps(tokens))
        env = {"PORTAL_STORAGE__ADAPTER": "postgres", "PORTAL_STORAGE__DSN": dsn,
               "PORTAL_MAIL__OUTBOX_INTERVAL": "0", "PORTAL_LOGGING__LEVEL": "WARNING"}
        with live_portal(data_dir, demo=False, env=env) as portal:
            pid = portal_pid()
            one = subprocess.Popen(
                [sys.executable, "-m", "tests.bench.bench_sse", "--clients", portal.url,
                 str(_one_token(data_dir, tokens[0]))], stdout=subprocess.PIPE, text=True)
            await next_line(one, 60)
            await asyncio.sleep(1)
            baseline = proc_status(pid)["VmRSS"]
            one.kill()
            one.wait()
            gc.collect()

            started = time.monotonic()
            many = subprocess.Popen(
                [sys.executable, "-m", "tests.bench.bench_sse", "--clients", portal.url,
                 str(tokens_file)], stdout=subprocess.PIPE, text=True)
            try:
                print(f"{count} streams: {await next_line(many, 600)}")
                await asyncio.sleep(2)
                held = proc_status(pid)["VmRSS"]
                per_stream = (held - baseline) / count
                print(f"server RSS: {baseline / 1e6:.1f} MB with one stream, "
                      f"{held / 1e6:.1f} MB with {count}: {per_stream / KB:.1f} KB per "
                      f"stream (goal < {GOAL_BYTES_PER_STREAM / KB:.0f} KB)")
                everyone: list[float] = []
                after_answer: list[float] = []
                for round_ in range(1, ROUNDS + 1):
                    title = f"Round {round_} {uuid.uuid4().hex[:6]}"
                    before = time.time()
                    posted = await announce(portal.url, staff_token, cabinet_id, title)
                    report = json.loads((await next_line(many, 120)).removeprefix("arrived "))
                    assert report["title"] == title, report
                    delays = [at - before for at in report["at"]]
                    everyone += delays
                    after_answer += [delay - posted for delay in delays]
                    print(f"round {round_}: POST answered in {posted * 1000:.0f} ms; "
                          f"arrival p50 {percentile(delays, 0.5) * 1000:.0f} ms, "
                          f"p99 {percentile(delays, 0.99) * 1000:.0f} ms, "
                          f"max {max(delays) * 1000:.0f} ms")
                    await asyncio.sleep(2)
                p99 = percentile(everyone, 0.99)
                print(f"from the POST (storing the announcement for {count} users, then the "
                      f"fan-out): p50 {percentile(everyone, 0.5) * 1000:.0f} ms, "
                      f"p99 {p99 * 1000:.0f} ms (goal < {GOAL_P99 * 1000:.0f} ms), "
                      f"mean {statistics.fmean(everyone) * 1000:.0f} ms")
                print(f"from the POST's answer (sent once committed and published): p50 "
                      f"{percentile(after_answer, 0.5) * 1000:.0f} ms, p99 "
                      f"{percentile(after_answer, 0.99) * 1000:.0f} ms; "
                      f"whole run {time.monotonic() - started:.0f} s")
                print(f"goals: memory {'met' if per_stream < GOAL_BYTES_PER_STREAM else 'MISSED'}"
                      f", fan-out from the POST {'met' if p99 < GOAL_P99 else 'MISSED'}")
                held, stored, mailed = await _written(dsn)
                print(f"written from the batches: {stored} notifications and {mailed} e-mails "
                      f"(expected {ROUNDS * count} of each), {held} batches still held")
            finally:
                many.kill()
                many.wait()


async def _written(dsn: str) -> tuple[int, int, int]:
    """Once the batch writer is done (within 30 s): batches held, notifications, e-mails."""
    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            for _ in range(60):
                cursor.execute("SELECT (SELECT COUNT(*) FROM notification_batches),"
                               " (SELECT COUNT(*) FROM notifications),"
                               " (SELECT COUNT(*) FROM outbox)")
                held, stored, mailed = cursor.fetchone()
                if not held:
                    break
                await asyncio.sleep(0.5)
    finally:
        connection.close()
    return int(held), int(stored), int(mailed)


def _one_token(data_dir: Path, token: str) -> Path:
    path = data_dir / "one-token.json"
    path.write_text(json.dumps([token]))
    return path


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--clients":
        asyncio.run(clients(sys.argv[2], Path(sys.argv[3])))
        return
    count = int(sys.argv[1]) if len(sys.argv) > 1 else CONNECTIONS
    asyncio.run(measure(count))


if __name__ == "__main__":
    main()
