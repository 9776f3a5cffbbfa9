"""Benchmark: the purchases feed, by `portal feed import` and by the webhook.

Run on demand (not part of the suite):  .venv/bin/python -m tests.bench.bench_feed [postgres|sqlite]
On the demo data, in a database (or SQLite file) of its own:

- import: a JSON-lines file of 60 events of 100 license items each, the command's own code
  in-process (`app.cli._feed_import`, the same as `portal feed import FILE`), timed without
  the start-up. Half the events are a new customer's first purchase (no users yet, so
  nobody to tell); the other half go to the demo's four customers in turn, whose users are
  told in the portal and by e-mail. Prints licenses per second for each half, and the
  command's CPU time per event.
- webhook: a running portal (`portal serve`) and 16 clients that POST signed events of one
  license and one certificate, each a new customer's or Acme's, for a fixed count; prints
  events per second and the portal's CPU per event.

Every event is still one transaction with all its guarantees (applied once, audited, told).
Goals (issue 15): import >= 20,000 licenses/s; webhook >= 200 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from app.cli import _feed_import, tune_garbage_collection
from app.config import load_settings
from app.container import open_services
from app.services.demo import seed_demo
from tests.bench.bench_api import cpu_seconds
from tests.conftest import TEST_ENV
from tests.feed import purchase, signed
from tests.live import live_portal
from tests.pg import temporary_database

EVENTS = 60
ITEMS = 100
WEBHOOK_EVENTS = 1200
CLIENTS = 16
EXISTING = "DEMO-ACME"
# The demo's customers with users: each is told of what it buys.
CUSTOMERS = ("DEMO-ACME", "DEMO-ACME-LABS", "DEMO-GLOBEX", "DEMO-GLOBEX-EU")


def licenses(order: str, count: int) -> list[dict[str, Any]]:
    return [{"external_id": f"{order}-{n}", "kind": "license",
             "product_code": ("dbguard", "vaultkeeper")[n % 2], "edition": "Enterprise",
             "seats": 10 + n, "valid_from": "2026-11-26", "valid_to": "2027-11-25"}
            for n in range(count)]


def events(count: int, items: int, existing: bool) -> list[dict[str, Any]]:
    made = []
    for n in range(count):
        order = f"ORD-{uuid.uuid4().hex[:10]}"
        event = purchase("dbguard", CUSTOMERS[n % len(CUSTOMERS)] if existing else None,
                         items=licenses(order, items))
        event["event_id"] = f"evt_{order}"
        made.append(event)
    return made


async def import_rate(environ: dict[str, str], folder: Path) -> None:
    settings = load_settings(environ={**environ, "PORTAL_LOGGING__LEVEL": "WARNING"})
    tune_garbage_collection()  # as `portal feed import` does
    async with open_services(settings) as services:
        await services.storage.migrate()
        await seed_demo(services)
        for existing, who in ((False, "new customers"), (True, "the demo's customers")):
            file = folder / f"events-{existing}.jsonl"
            file.write_text("".join(json.dumps(e) + "\n"
                                    for e in events(EVENTS, ITEMS, existing)))
            started, cpu = time.perf_counter(), time.process_time()
            code = await _feed_import(services, argparse.Namespace(file=file))
            took, cpu = time.perf_counter() - started, time.process_time() - cpu
            assert code == 0, "the import refused events"
            print(f"import, {who:22} {EVENTS * ITEMS / took:9,.0f} licenses/s "
                  f"({EVENTS} events of {ITEMS} in {took:.2f} s, {cpu / EVENTS * 1000:.1f} ms "
                  "of the command's CPU each; goal >= 20,000)")


async def webhook_rate(url: str, pid: int) -> None:
    bodies = [signed(purchase("dbguard", EXISTING if n % 2 else None))
              for n in range(WEBHOOK_EVENTS)]
    queue: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    failed: list[int] = []

    async def client(http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body, headers = queue.get_nowait()
            async with http.post(f"{url}/api/v1/feed/purchases", data=body,
                                 headers=headers) as response:
                await response.read()
                if response.status != 200:
                    failed.append(response.status)

    async with aiohttp.ClientSession() as http:
        cpu, started = cpu_seconds(pid), time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(CLIENTS)))
        took, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu
    print(f"webhook                        {WEBHOOK_EVENTS / took:9,.0f} events/s "
          f"({WEBHOOK_EVENTS} events, {CLIENTS} clients, {cpu / WEBHOOK_EVENTS * 1000:.2f} ms "
          f"of portal CPU each; goal >= 200)"
          + (f"; {len(failed)} failed: {sorted(set(failed))}" if failed else ""))


def portal_pid(log: Path) -> int:
    """The `portal serve` process writing this log."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "fd" / "1") == str(log):
                    return int(entry.name)
    raise RuntimeError("the portal's process was not found")


def main() -> None:
    kinds = sys.argv[1:] or ["postgres", "sqlite"]
    for kind in kinds:
        print(f"== {kind}")
        with contextlib.ExitStack() as stack:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-feed-")))
            storage = {"PORTAL_STORAGE__ADAPTER": kind}
            if kind == "postgres":
                storage["PORTAL_STORAGE__DSN"] = stack.enter_context(
                    temporary_database("portal_bench"))
            environ = {**TEST_ENV, **storage, "PORTAL_DATA_DIR": str(folder / "import")}
            asyncio.run(import_rate(environ, folder))
            if kind == "postgres":
                storage["PORTAL_STORAGE__DSN"] = stack.enter_context(
                    temporary_database("portal_bench"))
            portal = stack.enter_context(live_portal(folder / "serve", env=storage))
            asyncio.run(webhook_rate(portal.url, portal_pid(portal.log)))


if __name__ == "__main__":
    main()
