"""Benchmark: sign-in cost and authenticated request throughput, on both storage adapters.

Run on demand (not part of the suite):  .venv/bin/python -m tests.bench.bench_auth
Prints, per adapter: the time of one sign-in at the configured argon2id cost, the event-loop
lag (p99) while 8 sign-ins hash at once, and GET /api/v1/me requests per second with 32
concurrent clients over loopback. PostgreSQL: the server on 127.0.0.1:5432.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from aiohttp import ClientSession, web

from app.config import load_settings
from app.domain.cabinets import CabinetKind
from app.domain.roles import Role
from app.domain.users import SYSTEM
from app.web.app import create_app
from app.web.keys import SERVICES
from tests.live import free_port
from tests.pg import temporary_database

PASSWORD = "benchmark password"


async def loop_lag(stop: asyncio.Event, samples: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.005)
        samples.append(time.perf_counter() - started - 0.005)


async def run(backend: str, dsn: str | None, data_dir: Path) -> None:
    env = {"PORTAL_DATA_DIR": str(data_dir), "PORTAL_STORAGE__ADAPTER": backend,
           "PORTAL_LOGGING__ACCESS_LOG": "false",
           # Attempts in flight count against the limits until they succeed.
           "PORTAL_AUTH__THROTTLE__MAX_FAILURES_PER_ACCOUNT": "100",
           "PORTAL_AUTH__THROTTLE__MAX_FAILURES_PER_ADDRESS": "100000"}
    if dsn:
        env["PORTAL_STORAGE__DSN"] = dsn
    settings = load_settings(environ=env)
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}"
    try:
        services = runner.app[SERVICES]
        cabinet = await services.cabinets.create(SYSTEM, "Bench", CabinetKind.CUSTOMER, None)
        email = f"bench-{uuid.uuid4().hex[:8]}@example.test"
        await services.users.create_with_password(SYSTEM, cabinet.id, email, "Bench",
                                                  Role.CUSTOMER_ADMIN, PASSWORD)
        async with ClientSession() as http:
            async def login() -> str:
                async with http.post(f"{url}/api/v1/jwt",
                                     json={"email": email, "password": PASSWORD}) as answer:
                    assert answer.status == 200, await answer.text()
                    return str((await answer.json())["access_token"])

            await login()
            started = time.perf_counter()
            token = await login()
            one_login = time.perf_counter() - started

            stop, lags = asyncio.Event(), list[float]()
            probe = asyncio.create_task(loop_lag(stop, lags))
            await asyncio.gather(*(login() for _ in range(8)))
            stop.set()
            await probe
            p99_lag = statistics.quantiles(lags, n=100)[98] if len(lags) > 2 else max(lags)

            headers = {"Authorization": f"Bearer {token}"}
            done = 0
            deadline = time.perf_counter() + 5

            async def client() -> None:
                nonlocal done
                while time.perf_counter() < deadline:
                    async with http.get(f"{url}/api/v1/me", headers=headers) as answer:
                        assert answer.status == 200
                        await answer.read()
                    done += 1

            started = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(32)))
            rate = done / (time.perf_counter() - started)
        print(f"{backend:>8}: one sign-in {one_login * 1000:6.1f} ms | loop lag p99 during 8 "
              f"sign-ins {p99_lag * 1000:5.1f} ms | GET /api/v1/me {rate:7.0f} req/s "
              "(client and server share the loop)")
    finally:
        await runner.cleanup()


async def main() -> None:
    with temporary_database("portal_bench") as dsn, tempfile.TemporaryDirectory() as folder:
        await run("sqlite", None, Path(folder) / "sqlite")
        await run("postgres", dsn, Path(folder) / "postgres")


if __name__ == "__main__":
    asyncio.run(main())
