"""Benchmark: the everyday API against a bare aiohttp + aiopg app, side by side.

Run on demand (not part of the suite):  .venv/bin/python -m tests.bench.bench_api
Starts the real portal (`portal serve`, demo data, PostgreSQL in a database of its own,
config.yaml's defaults otherwise: access log on) and a bare app of some 30 lines that answers
the same paths with one SELECT each and no authentication, each server pinned to core 0,
and loads them with wrk pinned to core 1 (one thread, 32 connections), in alternating
rounds, so that drifts of the shared machine hit both alike. Prints per request and round
the requests per second of each, their ratio, its median and spread, and the p99 of each.
Goals (issue 15): detail and /me >= 0.7 of the bare app with p99 within 2x; the 50-row list
>= 0.7. Needs wrk and taskset.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.bench.bench_archive import PRODUCTION_ARGON2
from tests.live import LivePortal, free_port, live_portal
from tests.pg import temporary_database

ROUNDS = 3
SECONDS = 5
CUSTOMER = ("admin@acme.example", "demo-acme-admin")

# The baseline: what each request must do at the least (read one row, or a page, and
# answer it as JSON), and nothing else.
BARE = """
import json, sys
import aiopg
from aiohttp import web

DSN, PORT = sys.argv[1], int(sys.argv[2])

async def pool(app):
    app["pool"] = await aiopg.create_pool(DSN, minsize=1, maxsize=10)
    yield
    app["pool"].close()
    await app["pool"].wait_closed()

async def one(request):
    async with request.app["pool"].acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT id, number, product_id, cabinet_id, valid_from, valid_to,"
                          " edition, seats FROM licenses WHERE id = %s",
                          (request.match_info["id"],))
        row = await cur.fetchone()
    names = ("id", "number", "product_id", "cabinet_id", "valid_from", "valid_to",
             "edition", "seats")
    return web.json_response(dict(zip(names, row)), dumps=lambda v: json.dumps(v, default=str))

async def page(request):
    async with request.app["pool"].acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT id, number, product_id, cabinet_id, valid_from, valid_to,"
                          " edition, seats FROM licenses ORDER BY id LIMIT 50")
        rows = await cur.fetchall()
    names = ("id", "number", "product_id", "cabinet_id", "valid_from", "valid_to",
             "edition", "seats")
    return web.json_response({"items": [dict(zip(names, r)) for r in rows]},
                             dumps=lambda v: json.dumps(v, default=str))

async def user(request):
    async with request.app["pool"].acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT id, email, name, role, cabinet_id FROM users LIMIT 1")
        row = await cur.fetchone()
    return web.json_response(dict(zip(("id", "email", "name", "role", "cabinet"), row)))

app = web.Application()
app.cleanup_ctx.append(pool)
app.router.add_get("/api/v1/licenses/{id}", one)
app.router.add_get("/api/v1/licenses", page)
app.router.add_get("/api/v1/me", user)
web.run_app(app, host="127.0.0.1", port=PORT, print=None, access_log=None)
"""


@contextmanager
def bare_app(dsn: str) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-c", BARE, dsn,
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
        yield url
    finally:
        process.terminate()
        process.wait()


def wrk(url: str, headers: dict[str, str]) -> tuple[float, float]:
    """Requests per second and the p99 in milliseconds."""
    command = ["taskset", "-c", "1", "wrk", "-t1", "-c32", f"-d{SECONDS}s", "--latency", url]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "Non-2xx" not in done.stdout, done.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", done.stdout)
    assert rate and p99, done.stdout
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99[2]]
    return float(rate[1]), float(p99[1]) * scale


def sign_in(url: str) -> str:
    request = urllib.request.Request(
        f"{url}/api/v1/jwt", data=json.dumps({"email": CUSTOMER[0], "password": CUSTOMER[1]})
        .encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return str(json.loads(answer.read())["access_token"])


def pin(pid: int, core: str) -> None:
    subprocess.run(["taskset", "-a", "-p", "-c", core, str(pid)], check=True,
                   stdout=subprocess.DEVNULL)


def measure(portal: LivePortal, bare: str) -> None:
    from tests.bench.bench_archive import portal_pid

    pin(portal_pid(), "0")
    token = sign_in(portal.url)
    headers = {"Authorization": f"Bearer {token}"}
    with urllib.request.urlopen(urllib.request.Request(
            f"{portal.url}/api/v1/licenses?limit=1", headers=headers), timeout=10) as answer:
        license_id = json.loads(answer.read())["items"][0]["id"]
    paths = {"GET /api/v1/licenses/{id}": f"/api/v1/licenses/{license_id}",
             "GET /api/v1/me": "/api/v1/me",
             "GET /api/v1/licenses (50 rows)": "/api/v1/licenses?limit=50"}
    print(f"one server core each (taskset), wrk -t1 -c32 -d{SECONDS}s on the other; "
          f"{ROUNDS} alternating rounds")
    for label, path in paths.items():
        ratios, ours, theirs, p99s = [], [], [], []
        for _ in range(ROUNDS):
            mine, mine_p99 = wrk(portal.url + path, headers)
            base, base_p99 = wrk(bare + path, {})
            ours.append(mine)
            theirs.append(base)
            ratios.append(mine / base)
            p99s.append((mine_p99, base_p99))
        print(f"{label:32} portal {statistics.median(ours):7,.0f} req/s, bare "
              f"{statistics.median(theirs):7,.0f}: ratio {statistics.median(ratios):.2f} "
              f"({min(ratios):.2f}-{max(ratios):.2f}); p99 portal "
              f"{statistics.median(p for p, _ in p99s):.1f} ms, bare "
              f"{statistics.median(b for _, b in p99s):.1f} ms")


def main() -> None:
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"bench_api: needs {tool}")
    with temporary_database("portal_bench") as dsn, \
            tempfile.TemporaryDirectory(prefix="bench-api-") as folder, \
            live_portal(Path(folder) / "portal", PORTAL_STORAGE__ADAPTER="postgres",
                        PORTAL_STORAGE__DSN=dsn, PORTAL_LOGGING__ACCESS_LOG="true",
                        env=PRODUCTION_ARGON2) as portal, bare_app(dsn) as bare:
        measure(portal, bare)


if __name__ == "__main__":
    main()
