"""Benchmark: the support requests list against the licenses list of the same size, and a
100 MiB attachment up and down with the portal's memory meanwhile.

Run on demand (not part of the suite):  .venv/bin/python -m tests.bench.bench_support
Starts the real portal (`portal serve` on the demo data, PostgreSQL in a database of its own,
config.yaml's argon2 cost) in a process of its own and gives Acme's tree 10,000 support
requests and 10,000 licenses, written straight into storage. Acme's administrator then asks
for the first page (50) of each list through wrk (Debian's package; one thread, 16
connections), in alternating rounds of ROUND_SECONDS, so that drifts of the shared machine
hit both alike.
Prints each round's requests per second, the ratio issues / licenses per round and its
median and spread. Then a customer uploads a 100 MiB file to a request (multipart, streamed
from a generator) and downloads it, timed; the portal's peak RSS (VmHWM, reset first) during
each is set against its RSS before.
Goals: the issues list at >= 0.8 of the licenses list; each transfer under +50 MB of RSS.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
from aiohttp import ClientSession, ClientTimeout, FormData

from adapters.system import Uuid7Ids
from app.config import load_settings
from app.container import open_services
from app.domain.access import Scope
from app.domain.licensing import DocumentFilter, DocumentStatus, License
from app.domain.paging import PageRequest
from app.domain.support import IssueStatus, Priority, SupportIssue, number_for
from tests.bench.bench_archive import (
    PRODUCTION_ARGON2,
    get_json,
    login,
    portal_pid,
    proc_status,
    reset_peak,
)
from tests.live import LivePortal, live_portal
from tests.pg import temporary_database

MIB = 1024 * 1024
ROWS = 10_000
CHUNK = 1_000
ROUNDS = 5
ROUND_SECONDS = 4
CONCURRENCY = 16
FILE_SIZE = 100 * MIB
RATIO_GOAL = 0.8
RSS_GOAL = 50 * 1000 * 1000  # bytes of growth
ADMIN = ("admin@acme.example", "demo-acme-admin")
USER = ("user@acme.example", "demo-acme-user")


async def seed(portal: LivePortal) -> None:
    """10,000 requests and 10,000 licenses in Acme's tree (half in Acme Labs)."""
    settings = load_settings(environ=portal.env)
    ids, now = Uuid7Ids(), datetime.now(UTC)
    async with open_services(settings, prepare_schema=False) as services:
        async with services.storage.unit_of_work() as uow:
            acme = await uow.cabinets.get_by_external_id("DEMO-ACME", Scope.everything())
            labs = await uow.cabinets.get_by_external_id("DEMO-ACME-LABS", Scope.everything())
            product = await uow.products.get_by_code("dbguard")
            bob = await uow.users.get_by_email_key("user@acme.example")
            assert acme and labs and product and bob
            [certificate] = await uow.certificates.list_visible(
                Scope.subtree(acme.path), DocumentFilter(
                    today=date.today(), product_id=product.id, status=DocumentStatus.ACTIVE),
                PageRequest(10))
        started = time.perf_counter()
        for start in range(0, ROWS, CHUNK):
            async with services.storage.unit_of_work() as uow:
                for n in range(start, start + CHUNK):
                    cabinet = acme if n % 2 else labs
                    made = now - timedelta(minutes=ROWS - n)
                    await uow.support.add(SupportIssue(
                        id=ids.new_id(), number=number_for(2031, n), cabinet_id=cabinet.id,
                        author_id=bob.id, author_name=bob.name, product_id=product.id,
                        certificate_id=certificate.id, level=certificate.level,
                        license_id=None, subject=f"Bench request {n}",
                        description="Written by the benchmark.",
                        status=list(IssueStatus)[n % len(IssueStatus)],
                        priority=list(Priority)[n % len(Priority)], assignee_id=None,
                        created_at=made, updated_at=made,
                        first_response_due=made + timedelta(hours=4),
                        resolution_due=made + timedelta(days=2)))
                    await uow.licenses.add(License(
                        id=ids.new_id(), number=f"LIC-2031-{n:06d}", product_id=product.id,
                        cabinet_id=cabinet.id, valid_from=date(2026, 1, 1),
                        valid_to=date(2099, 12, 31), revoked_at=None,
                        purchase_item=f"BENCH-{n}", created_at=made, updated_at=made,
                        edition="Enterprise", seats=10))
                await uow.commit()
        # As autovacuum would soon: the planner knows the tables' sizes.
        conn = await asyncio.to_thread(psycopg2.connect, settings.storage.dsn)
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                await asyncio.to_thread(cursor.execute, "ANALYZE")
        finally:
            conn.close()
        print(f"setup: {ROWS:,} requests and {ROWS:,} licenses written in "
              f"{time.perf_counter() - started:.1f} s")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def hammer(url: str, headers: dict[str, str], seconds: int,
                 pid: int) -> tuple[float, float]:
    """Requests per second from wrk (one thread, CONCURRENCY connections: a client that
    costs little next to the server), and the portal's CPU milliseconds per request."""
    command = ["wrk", "-t1", f"-c{CONCURRENCY}", f"-d{seconds}s", "--latency", url]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    cpu = cpu_seconds(pid)
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True,
                                   check=True)
    used = cpu_seconds(pid) - cpu
    assert "Non-2xx" not in done.stdout, done.stdout
    found = re.search(r"(\d+) requests in", done.stdout)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    assert found and rate, done.stdout
    return float(rate[1]), used / int(found[1]) * 1000


async def lists(http: ClientSession, portal: LivePortal) -> None:
    admin = await login(http, portal.url, ADMIN)
    issues = f"{portal.url}/api/v1/issues?limit=50"
    licenses = f"{portal.url}/api/v1/licenses?limit=50"
    for url in (issues, licenses):  # both warm, and both see the whole tree
        first = await get_json(http, url, admin)
        assert len(first["items"]) == 50 and first["next_cursor"], url
    pid = portal_pid()
    ratios, issue_rates, license_rates = [], [], []
    issue_cpu, license_cpu = [], []
    for _ in range(ROUNDS):
        rate, cpu = await hammer(issues, admin, ROUND_SECONDS, pid)
        issue_rates.append(rate)
        issue_cpu.append(cpu)
        rate, cpu = await hammer(licenses, admin, ROUND_SECONDS, pid)
        license_rates.append(rate)
        license_cpu.append(cpu)
        ratios.append(issue_rates[-1] / license_rates[-1])
    median = statistics.median(ratios)
    print("GET /api/v1/issues?limit=50   req/s per round: "
          + ", ".join(f"{r:.0f}" for r in issue_rates)
          + f"; portal CPU {statistics.median(issue_cpu):.2f} ms a request")
    print("GET /api/v1/licenses?limit=50 req/s per round: "
          + ", ".join(f"{r:.0f}" for r in license_rates)
          + f"; portal CPU {statistics.median(license_cpu):.2f} ms a request")
    print("issues / licenses per round: " + ", ".join(f"{r:.2f}" for r in ratios)
          + f"; median {median:.2f} (spread {min(ratios):.2f}-{max(ratios):.2f}); "
          f"goal >= {RATIO_GOAL}: {'MET' if median >= RATIO_GOAL else 'NOT MET'}")


async def blocks(size: int, digest: Any) -> AsyncIterator[bytes]:
    block = bytes(range(256)) * 4096  # 1 MiB
    for _ in range(size // len(block)):
        digest.update(block)
        yield block


async def attachment(http: ClientSession, portal: LivePortal) -> None:
    user = await login(http, portal.url, USER)
    products = await get_json(http, f"{portal.url}/api/v1/products", user)
    [product] = [p for p in products["items"] if p["code"] == "dbguard"]
    async with http.post(f"{portal.url}/api/v1/issues", headers=user, json={
            "subject": "A core dump", "description": "Attached.",
            "product_id": product["id"]}) as answer:
        assert answer.status == 201, await answer.text()
        issue = await answer.json()
    pid = portal_pid()
    sent = hashlib.sha256()
    form = FormData()
    form.add_field("file", blocks(FILE_SIZE, sent), filename="core.dump.gz",
                   content_type="application/gzip")
    before = proc_status(pid)
    reset = reset_peak(pid)
    started = time.perf_counter()
    async with http.post(f"{portal.url}/api/v1/issues/{issue['id']}/attachments",
                         headers=user, data=form) as answer:
        assert answer.status == 201, await answer.text()
        stored = await answer.json()
    up = time.perf_counter() - started
    up_peak = proc_status(pid)["VmHWM"]
    assert stored["size"] == FILE_SIZE and stored["sha256"] == sent.hexdigest()

    middle = proc_status(pid)
    reset_peak(pid)
    got, read = 0, hashlib.sha256()
    started = time.perf_counter()
    async with http.get(f"{portal.url}{stored['download_url']}", headers=user) as answer:
        assert answer.status == 200
        async for chunk in answer.content.iter_any():
            got += len(chunk)
            read.update(chunk)
    down = time.perf_counter() - started
    down_peak = proc_status(pid)["VmHWM"]
    assert got == FILE_SIZE and read.hexdigest() == sent.hexdigest()
    up_growth = up_peak - before["VmRSS"]
    down_growth = down_peak - middle["VmRSS"]
    print(f"upload   {FILE_SIZE / MIB:.0f} MiB in {up:.2f} s = {FILE_SIZE / MIB / up:.0f} MiB/s;"
          f" peak RSS {up_peak / MIB:.1f} MiB against {before['VmRSS'] / MIB:.1f} MiB before:"
          f" +{up_growth / MIB:.1f} MiB")
    print(f"download {FILE_SIZE / MIB:.0f} MiB in {down:.2f} s = "
          f"{FILE_SIZE / MIB / down:.0f} MiB/s; peak RSS {down_peak / MIB:.1f} MiB against "
          f"{middle['VmRSS'] / MIB:.1f} MiB before: +{down_growth / MIB:.1f} MiB")
    met = max(up_growth, down_growth) < RSS_GOAL and reset
    print(f"goal < +50 MB of RSS each way: {'MET' if met else 'NOT MET'}"
          + ("" if reset else " (peak not resettable here)"))


async def measure(portal: LivePortal) -> None:
    await seed(portal)
    timeout = ClientTimeout(total=None, sock_connect=10, sock_read=120)
    async with ClientSession(timeout=timeout) as http:
        await lists(http, portal)
        await attachment(http, portal)


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("bench_support: needs wrk (apt-get install wrk)")
    started = time.perf_counter()
    with temporary_database("portal_bench") as dsn, \
            tempfile.TemporaryDirectory(prefix="bench-support-") as folder, \
            live_portal(Path(folder) / "portal", PORTAL_LOGGING__LEVEL="WARNING",
                        PORTAL_STORAGE__ADAPTER="postgres", PORTAL_STORAGE__DSN=dsn,
                        PORTAL_SUPPORT__MAX_ATTACHMENT_BYTES=str(2 * FILE_SIZE),
                        env=PRODUCTION_ARGON2) as portal:
        asyncio.run(measure(portal))
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
