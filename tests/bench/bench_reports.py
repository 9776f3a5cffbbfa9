"""Benchmark: reports of 100,000 licenses on PostgreSQL.

Run on demand (not part of the suite):  .venv/bin/python -m tests.bench.bench_reports
Starts the real portal (`portal serve` on the demo data, PostgreSQL in a database of its own,
config.yaml's argon2 cost) in a process of its own, writes 100,000 licenses into one
customer's tree straight into storage, and asks as staff for that customer's licenses report
as CSV (RUNS times: rows per second, time to the first byte) and XLSX (time), and for a PDF of
the first 2,000 (`expires_before` picks them; time). The portal's peak RSS (VmHWM, reset
before each) is set against its RSS before.
Goals: CSV >= 50,000 rows/s with the first byte under 200 ms; XLSX under 10 s; each under
+100 MB of RSS; the 2,000-row PDF timed (WeasyPrint's own cost, in a worker process).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
from aiohttp import ClientSession, ClientTimeout

from adapters.system import Uuid7Ids
from app.config import load_settings
from app.container import open_services
from app.domain.access import Scope
from app.domain.licensing import License
from tests.bench.bench_archive import PRODUCTION_ARGON2, login, portal_pid, proc_status, reset_peak
from tests.live import LivePortal, live_portal
from tests.pg import temporary_database

MIB = 1024 * 1024
ROWS = 100_000
PDF_ROWS = 2_000
CHUNK = 2_000
RUNS = 3
STAFF = ("admin@hornsandhooves.example", "demo-staff-admin")
# The PDF's rows end within days (the demo's own license of the customer ends in a year).
SOON = date.today() + timedelta(days=10)


async def seed(portal: LivePortal) -> str:
    """100,000 licenses of Globex (PDF_ROWS of them ending in 2030); Globex's id."""
    settings = load_settings(environ=portal.env)
    ids, now = Uuid7Ids(), datetime.now(UTC)
    async with open_services(settings, prepare_schema=False) as services:
        async with services.storage.unit_of_work() as uow:
            globex = await uow.cabinets.get_by_external_id("DEMO-GLOBEX", Scope.everything())
            europe = await uow.cabinets.get_by_external_id("DEMO-GLOBEX-EU",
                                                           Scope.everything())
            product = await uow.products.get_by_code("vaultkeeper")
            assert globex and europe and product
        started = time.perf_counter()
        for start in range(0, ROWS, CHUNK):
            async with services.storage.unit_of_work() as uow:
                for n in range(start, start + CHUNK):
                    ends = SOON if n < PDF_ROWS else date(2031, 1, 1) + \
                        timedelta(days=n % 700)
                    await uow.licenses.add(License(
                        id=ids.new_id(), number=f"LIC-2031-{n:06d}", product_id=product.id,
                        cabinet_id=(globex if n % 3 else europe).id, valid_from=date(2026, 1, 1),
                        valid_to=ends, revoked_at=None, purchase_item=f"BENCH-{n}",
                        created_at=now, updated_at=now, edition="Enterprise", seats=n % 500))
                await uow.commit()
    conn = psycopg2.connect(settings.storage.dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("ANALYZE")
    finally:
        conn.close()
    print(f"setup: {ROWS:,} licenses written in {time.perf_counter() - started:.1f} s")
    return globex.id


async def download(http: ClientSession, url: str, headers: dict[str, str]
                   ) -> tuple[float, float, int, bytes]:
    """Seconds to the first byte, seconds in all, bytes, and the first line."""
    started = time.perf_counter()
    first_byte: float | None = None
    size, head = 0, b""
    async with http.get(url, headers=headers) as answer:
        assert answer.status == 200, await answer.text()
        async for chunk in answer.content.iter_any():
            if first_byte is None:
                first_byte = time.perf_counter() - started
                head = chunk[:200]
            size += len(chunk)
    return first_byte or 0.0, time.perf_counter() - started, size, head


async def peak_of(pid: int, work: Any) -> tuple[Any, float]:
    """What `work` returns, and the portal's RSS growth meanwhile in MiB."""
    before = proc_status(pid)["VmRSS"]
    reset_peak(pid)
    result = await work
    return result, (proc_status(pid)["VmHWM"] - before) / MIB


async def measure(portal: LivePortal) -> None:
    customer = await seed(portal)
    pid = portal_pid()
    timeout = ClientTimeout(total=None, sock_connect=10, sock_read=600)
    base = f"{portal.url}/api/v1/licenses?cabinet_id={customer}"
    async with ClientSession(timeout=timeout, read_bufsize=MIB) as http:
        staff = await login(http, portal.url, STAFF)
        csv_runs = []
        for _ in range(RUNS):
            (first, total, size, head), growth = await peak_of(
                pid, download(http, f"{base}&format=csv", staff))
            lines = ROWS + 1
            csv_runs.append((first, total, growth))
            assert head.startswith(b"Number,Product"), head
        rates = [ROWS / total for _, total, _ in csv_runs]
        firsts = [first * 1000 for first, _, _ in csv_runs]
        rate, first_ms = statistics.median(rates), statistics.median(firsts)
        print(f"CSV  {lines - 1:,} rows, {size / MIB:.1f} MiB: {rate:,.0f} rows/s (runs "
              f"{', '.join(f'{r:,.0f}' for r in rates)}); first byte {first_ms:.0f} ms "
              f"(runs {', '.join(f'{f:.0f}' for f in firsts)}); RSS growth "
              f"{max(g for _, _, g in csv_runs):.1f} MiB at most")
        print(f"     goals: >= 50,000 rows/s {'MET' if rate >= 50_000 else 'NOT MET'}; "
              f"first byte < 200 ms {'MET' if first_ms < 200 else 'NOT MET'}")
        (_, xlsx_time, xlsx_size, head), xlsx_growth = await peak_of(
            pid, download(http, f"{base}&format=xlsx", staff))
        assert head.startswith(b"PK")
        print(f"XLSX {ROWS:,} rows, {xlsx_size / MIB:.1f} MiB in {xlsx_time:.1f} s "
              f"({ROWS / xlsx_time:,.0f} rows/s); RSS growth {xlsx_growth:.1f} MiB; goals: "
              f"< 10 s {'MET' if xlsx_time < 10 else 'NOT MET'}, < 100 MB "
              f"{'MET' if xlsx_growth * MIB < 100e6 else 'NOT MET'}")
        soon = f"{base}&format=pdf&expires_before={SOON + timedelta(days=1)}"
        (_, pdf_time, pdf_size, head), pdf_growth = await peak_of(
            pid, download(http, soon, staff))
        assert head.startswith(b"%PDF")
        print(f"PDF  {PDF_ROWS:,} rows, {pdf_size / MIB:.1f} MiB in {pdf_time:.1f} s "
              f"(rendered in a worker process; the portal's own RSS growth "
              f"{pdf_growth:.1f} MiB)")


def main() -> None:
    started = time.perf_counter()
    with temporary_database("portal_bench") as dsn, \
            tempfile.TemporaryDirectory(prefix="bench-reports-") as folder, \
            live_portal(Path(folder) / "portal", PORTAL_LOGGING__LEVEL="WARNING",
                        PORTAL_STORAGE__ADAPTER="postgres", PORTAL_STORAGE__DSN=dsn,
                        env=PRODUCTION_ARGON2) as portal:
        asyncio.run(measure(portal))
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
