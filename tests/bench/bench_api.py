"""Benchmark: the everyday API against a bare aiohttp app on the same database, side by side.

Run on demand (not part of the suite):  .venv/bin/python -m tests.bench.bench_api [postgres|sqlite]
Starts the real portal (`portal serve`, demo data plus licenses enough for full 50-row pages
in the customer's tree, config.yaml's defaults otherwise: access log on) on PostgreSQL in a
database of its own, or on the embedded SQLite, and a bare app of some 40 lines that answers
the same paths with one SELECT each and no authentication (aiopg, or aiosqlite on the same
file), each server pinned to core 0, and loads them with wrk pinned to core 1 (one thread,
32 connections), in alternating rounds, so that drifts of the shared machine hit both
alike. Prints per request the requests per second of each, their ratio (median and spread
over the rounds) and the p99 of each; then how many pool connections the portal dropped
because a client went away mid-request (wrk closes its connections at the end of each run).
Goals (issue 15): detail and /me >= 0.7 of the bare app with p99 within 2x; the 50-row list
>= 0.7; 0 connections dropped. Needs wrk and taskset. Both kinds by default.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.bench.bench_archive import PRODUCTION_ARGON2
from tests.live import LivePortal, free_port, live_portal
from tests.pg import temporary_database

ROUNDS = 3
SECONDS = 5
CUSTOMER = ("admin@acme.example", "demo-acme-admin")
# Licenses added to the customer's own cabinet, so that a page holds 50 rows.
EXTRA_LICENSES = 120
DROPPED = "dropping a PostgreSQL connection"

# The baseline: what each request must do at the least (read one row, or a page, and
# answer it as JSON), and nothing else.
BARE = """
import json, sys
from aiohttp import web

KIND, WHERE, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])
COLUMNS = ("id", "number", "product_id", "cabinet_id", "valid_from", "valid_to", "edition",
           "seats")
ONE = f"SELECT {', '.join(COLUMNS)} FROM licenses WHERE id = %s"
PAGE = f"SELECT {', '.join(COLUMNS)} FROM licenses ORDER BY id LIMIT 50"
USER = "SELECT id, email, name, role, cabinet_id FROM users LIMIT 1"
TRANSFERS = "SELECT id, document_id, at FROM document_transfers WHERE document_id = %s"

if KIND == "postgres":
    import aiopg

    async def database(app):
        app["pool"] = await aiopg.create_pool(WHERE, minsize=1, maxsize=10)
        yield
        app["pool"].close()
        await app["pool"].wait_closed()

    async def fetch(request, sql, *args):
        async with request.app["pool"].acquire() as conn, conn.cursor() as cur:
            await cur.execute(sql, args)
            return await cur.fetchall()
else:
    import aiosqlite

    async def database(app):
        app["db"] = await aiosqlite.connect(WHERE)
        yield
        await app["db"].close()

    async def fetch(request, sql, *args):
        async with request.app["db"].execute(sql.replace("%s", "?"), args) as cur:
            return await cur.fetchall()

def out(value):
    return web.json_response(value, dumps=lambda v: json.dumps(v, default=str))

async def one(request):
    [row] = await fetch(request, ONE, request.match_info["id"])
    return out(dict(zip(COLUMNS, row)))

async def page(request):
    return out({"items": [dict(zip(COLUMNS, row)) for row in await fetch(request, PAGE)]})

async def floor(request):
    # The statements the portal's detail makes, on as many pool connections: the session
    # with its user (one connection), then the document and its transfers (another).
    [who] = await fetch(request, USER)
    [row] = await fetch(request, ONE, request.match_info["id"])
    await fetch(request, TRANSFERS, request.match_info["id"])
    return out({**dict(zip(COLUMNS, row)), "by": who[0]})

async def user(request):
    [row] = await fetch(request, USER)
    return out(dict(zip(("id", "email", "name", "role", "cabinet"), row)))

app = web.Application()
app.cleanup_ctx.append(database)
app.router.add_get("/api/v1/licenses/{id}", one)
app.router.add_get("/api/v1/licenses", page)
app.router.add_get("/api/v1/me", user)
app.router.add_get("/floor/licenses/{id}", floor)
web.run_app(app, host="127.0.0.1", port=PORT, print=None, access_log=None)
"""


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


@dataclass(frozen=True)
class Run:
    rate: float  # requests per second
    p99: float  # milliseconds
    cpu: float  # milliseconds of the server's CPU per request


def cpu_seconds(pid: int) -> float:
    """User and system time of a process and its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def bare_app(kind: str, where: str) -> Iterator[Server]:
    port = free_port()
    process = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-c", BARE, kind, where,
                                str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v1/me", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the bare app did not start"
                time.sleep(0.1)
        yield Server(url, process.pid)
    finally:
        process.terminate()
        process.wait()


def wrk(server: Server, path: str, headers: dict[str, str]) -> Run:
    url = server.url + path
    command = ["taskset", "-c", "1", "wrk", "-t1", "-c32", f"-d{SECONDS}s", "--latency", url]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    before = cpu_seconds(server.pid)
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    used = cpu_seconds(server.pid) - before
    assert "Non-2xx" not in done.stdout, done.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    count = re.search(r"(\d+) requests in", done.stdout)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", done.stdout)
    assert rate and count and p99, done.stdout
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99[2]]
    return Run(float(rate[1]), float(p99[1]) * scale, used * 1000 / int(count[1]))


def sign_in(url: str) -> str:
    request = urllib.request.Request(
        f"{url}/api/v1/jwt", data=json.dumps({"email": CUSTOMER[0], "password": CUSTOMER[1]})
        .encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return str(json.loads(answer.read())["access_token"])


def pin(pid: int, core: str) -> None:
    subprocess.run(["taskset", "-a", "-p", "-c", core, str(pid)], check=True,
                   stdout=subprocess.DEVNULL)


def measure(portal: LivePortal, bare: Server) -> None:
    from tests.bench.bench_archive import portal_pid

    ours = Server(portal.url, portal_pid())
    pin(ours.pid, "0")
    token = sign_in(portal.url)
    headers = {"Authorization": f"Bearer {token}"}
    with urllib.request.urlopen(urllib.request.Request(
            f"{portal.url}/api/v1/licenses?limit=1", headers=headers), timeout=10) as answer:
        license_id = json.loads(answer.read())["items"][0]["id"]
    with urllib.request.urlopen(urllib.request.Request(
            f"{portal.url}/api/v1/licenses?limit=50", headers=headers), timeout=10) as answer:
        assert len(json.loads(answer.read())["items"]) == 50, "the page is not full"
    paths = {"GET /api/v1/licenses/{id}": f"/api/v1/licenses/{license_id}",
             "GET /api/v1/me": "/api/v1/me",
             "GET /api/v1/licenses (50 rows)": "/api/v1/licenses?limit=50"}
    print(f"one server core each (taskset), wrk -t1 -c32 -d{SECONDS}s on the other; "
          f"{ROUNDS} alternating rounds; medians, the ratio's range in brackets")
    print(f"{'request':32} {'portal req/s':>12} {'bare req/s':>10} {'ratio':>17}"
          f" {'p99 portal / bare':>19} {'CPU/request portal / bare':>26}")
    for label, path in paths.items():
        row(label, [(wrk(ours, path, headers), wrk(bare, path, {})) for _ in range(ROUNDS)])
    # What the statements alone cost: the bare app making the detail's three statements
    # (no authentication, no middleware, no models) against the bare app's one.
    row("bare, the detail's 3 statements", [
        (wrk(bare, f"/floor/licenses/{license_id}", {}),
         wrk(bare, f"/api/v1/licenses/{license_id}", {})) for _ in range(ROUNDS)])


def row(label: str, runs: list[tuple[Run, Run]]) -> None:
    """One line of the table: medians of the rounds, and the range of their ratios."""
    ratios = [mine.rate / base.rate for mine, base in runs]

    def median(field: str, side: int) -> float:
        return float(statistics.median(getattr(pair[side], field) for pair in runs))

    print(f"{label:32} {median('rate', 0):12,.0f} {median('rate', 1):10,.0f}"
          f" {statistics.median(ratios):5.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
          f" {median('p99', 0):8.1f} / {median('p99', 1):5.1f} ms"
          f" {median('cpu', 0):13.2f} / {median('cpu', 1):4.2f} ms")


def seed(kind: str, where: str) -> None:
    """Copies of one of the customer's licenses in its own cabinet, to fill 50-row pages."""
    if kind == "postgres":
        import psycopg2
        connection: Any = psycopg2.connect(where)
        mark = "%s"
    else:
        connection = sqlite3.connect(where)
        mark = "?"
    columns = ("id", "number", "product_id", "cabinet_id", "valid_from", "valid_to",
               "revoked_at", "purchase_item", "created_at", "updated_at", "edition", "seats")
    try:
        cursor = connection.cursor()
        cursor.execute(f"SELECT {', '.join(columns)} FROM licenses l WHERE cabinet_id ="
                       f" (SELECT cabinet_id FROM users WHERE email = {mark}) LIMIT 1",
                       (CUSTOMER[0],))
        template = dict(zip(columns, cursor.fetchone(), strict=True))
        for n in range(EXTRA_LICENSES):
            row = {**template, "id": str(uuid.uuid4()), "number": f"LIC-2099-{n:06d}",
                   "purchase_item": None}
            cursor.execute(f"INSERT INTO licenses ({', '.join(columns)}) VALUES"
                           f" ({', '.join(mark for _ in columns)})", tuple(row.values()))
        connection.commit()
    finally:
        connection.close()


def dropped(portal: LivePortal) -> int:
    return portal.log.read_text(errors="replace").count(DROPPED)


def main() -> None:
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"bench_api: needs {tool}")
    kinds = sys.argv[1:] or ["postgres", "sqlite"]
    for kind in kinds:
        print(f"== {kind}")
        with contextlib.ExitStack() as stack:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-api-")))
            if kind == "postgres":
                where = stack.enter_context(temporary_database("portal_bench"))
                settings = {"PORTAL_STORAGE__ADAPTER": "postgres", "PORTAL_STORAGE__DSN": where}
            else:
                where = str(folder / "portal" / "portal.sqlite3")
                settings = {"PORTAL_STORAGE__ADAPTER": "sqlite"}
            portal = stack.enter_context(live_portal(
                folder / "portal", PORTAL_LOGGING__ACCESS_LOG="true",
                env={**PRODUCTION_ARGON2, **settings}))
            seed(kind, where)
            bare = stack.enter_context(bare_app(kind, where))
            measure(portal, bare)
            print(f"pool connections dropped after clients went away: {dropped(portal)}")


if __name__ == "__main__":
    main()
