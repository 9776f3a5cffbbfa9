"""Stopping without failing anyone: a SIGTERM drains (answers close their connections,
/readyz says 503, live streams end and new ones are sent elsewhere), then requests in
flight finish."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.plot import Mark, Series, line_chart
from tests.e2e.test_cluster import ALICE, STAFF, open_stream, sign_in
from tests.e2e.test_nginx import cluster_env, nginx, tls_session
from tests.e2e.test_prometheus import prometheus, query_range
from tests.live import LivePortal, live_portal, redis_server
from tests.pg import temporary_database


async def test_a_sigterm_drains_then_finishes_what_is_in_flight(tmp_path: Path) -> None:
    with live_portal(tmp_path / "var", PORTAL_SERVER__DRAIN_SECONDS="3") as portal:
        assert portal.process is not None
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            alice = await sign_in(http, portal, ALICE)
            stream, _ = await open_stream(http, portal, alice)
            async with http.get(f"{portal.url}/readyz") as ready:
                assert ready.status == 200 and "Connection" not in ready.headers
            portal.process.send_signal(signal.SIGTERM)
            started = time.monotonic()
            # The open stream ends at once (its retry hint was given when it opened).
            async with asyncio.timeout(2):
                assert await stream.content.read() == b""
            stream.close()
            async with http.get(f"{portal.url}/readyz") as ready:
                assert ready.status == 503
                assert (await ready.json())["checks"] == {"process": "stopping"}
            async with http.get(f"{portal.url}/api/v1/me", headers=alice) as answer:
                assert answer.status == 200  # still answered, and the connection closed
                assert answer.headers.get("Connection") == "close", dict(answer.headers)
            async with http.get(f"{portal.url}/api/v1/notifications/stream",
                                headers=alice) as refused:
                assert refused.status == 503 and refused.headers["Retry-After"] == "1"
            assert time.monotonic() - started < 3
        # After the drain the listener closes and the process ends cleanly.
        exit_code = await asyncio.to_thread(portal.process.wait, 20)
        assert exit_code == 0
    log = portal.log.read_text()
    assert "stopping: draining for 3.0 s" in log
    assert "outbox: stopped after its round" in log


# --- A rolling restart of two instances behind nginx, under load, counted ------------------

TOKEN = "rolling-metrics-token"
# Where the test keeps its plot for the README (PORTAL_PLOTS=docs), besides its tmp folder.
PLOTS = os.environ.get("PORTAL_PLOTS")
READERS = 6


@dataclass
class Tally:
    """What the clients saw, each with the second it happened (from the run's start)."""
    started: float = field(default_factory=time.monotonic)
    answered: int = 0
    failed: list[tuple[float, str]] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    received: list[str] = field(default_factory=list)
    refused_streams: list[tuple[float, str]] = field(default_factory=list)
    cut_streams: int = 0
    slowest: float = 0.0  # the longest wait for an answer, in seconds

    def now(self) -> float:
        return time.monotonic() - self.started


async def read_licenses(http: aiohttp.ClientSession, url: str, headers: dict[str, str],
                        tally: Tally) -> None:
    while True:
        began = time.monotonic()
        try:
            async with http.get(f"{url}/api/v1/licenses", headers=headers) as answer:
                body = await answer.read()
                tally.slowest = max(tally.slowest, time.monotonic() - began)
                if answer.status == 200 and b'"items"' in body:
                    tally.answered += 1
                else:
                    tally.failed.append((tally.now(), f"GET {answer.status} {body[:200]!r}"))
        except aiohttp.ClientError as error:
            tally.failed.append((tally.now(), f"GET {error!r}"))


async def announce_steadily(http: aiohttp.ClientSession, url: str, headers: dict[str, str],
                            tally: Tally, count: int) -> None:
    """An announcement every 200 ms: a write that nginx may not retry elsewhere."""
    for n in range(count):
        title = f"rolling {n}"
        try:
            async with http.post(f"{url}/api/v1/notifications", headers=headers,
                                 json={"title": title, "body": "Under load."}) as answer:
                if answer.status == 201:
                    tally.sent.append(title)
                else:
                    tally.failed.append((tally.now(),
                                         f"POST {answer.status} {await answer.text()}"))
        except aiohttp.ClientError as error:
            tally.failed.append((tally.now(), f"POST {error!r}"))
        await asyncio.sleep(0.2)


async def listen_like_a_browser(http: aiohttp.ClientSession, url: str,
                                headers: dict[str, str], tally: Tally) -> None:
    """What EventSource does: read events, and when the stream ends (or breaks) wait the
    server's retry hint and connect again with Last-Event-ID. A refused connection or an
    answer other than 200 would end a browser's EventSource for good: counted."""
    last: str | None = None
    retry = 3.0
    while True:
        wanted = {**headers, **({"Last-Event-ID": last} if last else {})}
        try:
            stream = await http.get(f"{url}/api/v1/notifications/stream", headers=wanted)
        except aiohttp.ClientError as error:
            tally.refused_streams.append((tally.now(), repr(error)))
            await asyncio.sleep(retry)
            continue
        try:
            if stream.status != 200:
                tally.refused_streams.append((tally.now(),
                                              f"{stream.status} {await stream.text()}"))
                await asyncio.sleep(retry)
                continue
            fields: dict[str, str] = {}
            while raw := await stream.content.readline():
                line = raw.decode().rstrip("\r\n")
                if line.startswith(":"):
                    continue
                if line:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
                    continue
                last = fields.get("id", last)
                retry = int(fields.get("retry", retry * 1000)) / 1000
                if fields.get("event") == "announcement":
                    tally.received.append(json.loads(fields["data"])["title"])
                fields = {}
        except aiohttp.ClientError:
            pass  # broken rather than ended: a browser reconnects all the same
        finally:
            # Cut, not closed: a TLS close waits for nginx's goodbye.
            if stream.connection is not None and stream.connection.transport is not None:
                stream.connection.transport.abort()
            stream.close()
        tally.cut_streams += 1
        await asyncio.sleep(retry)


@pytest.mark.postgres
@pytest.mark.redis
async def test_a_rolling_restart_under_load_fails_no_request_and_loses_no_notification(
        tmp_path: Path) -> None:
    with temporary_database("portal_rolling") as dsn, redis_server(tmp_path) as redis:
        env = {**cluster_env(dsn, redis.url, "rolling"), "PORTAL_METRICS__TOKEN": TOKEN,
               "PORTAL_SERVER__DRAIN_SECONDS": "3"}
        data = tmp_path / "data"
        with live_portal(data, env=env) as first, \
                live_portal(data, demo=False, env=env) as second, \
                nginx(tmp_path / "nginx", [first, second]) as proxy, \
                prometheus(tmp_path / "prometheus", [_target(first), _target(second)],
                           token=TOKEN) as base:
            tally, marks = await _restart_each_under_load(proxy, [first, second])
            series = _series(base, tally, [first, second])
            proxy_log = proxy.log.read_text()
    chart = line_chart(
        "A rolling restart of two instances behind nginx, under load",
        "requests per second", series, marks)
    (tmp_path / "rolling-restart.svg").write_text(chart)
    if PLOTS:
        (Path(PLOTS) / "rolling-restart.svg").write_text(chart)
    print(f"rolling restart: {tally.answered} reads answered (slowest {tally.slowest:.2f} s), "
          f"{len(tally.sent)} announcements sent, {len(tally.received)} received, "
          f"{tally.cut_streams} stream ends, {len(tally.failed)} failed")
    assert tally.failed == [], tally.failed
    # No request waited on a stopping instance until it gave up (nginx then tries the other).
    assert "upstream prematurely closed" not in proxy_log, proxy_log
    assert tally.refused_streams == [], tally.refused_streams
    # Every announcement reached the listener once: none lost in a restart, none twice.
    assert len(tally.sent) >= 50 and Counter(tally.received) == Counter(tally.sent)
    assert tally.cut_streams >= 1  # its stream did end in a restart, and came back
    assert tally.answered > 3000  # some 20,000 here: the restarts happened under load


async def _restart_each_under_load(proxy: LivePortal, portals: list[LivePortal]
                                   ) -> tuple[Tally, list[Mark]]:
    marks: list[Mark] = []
    async with tls_session(limit=0) as http:
        staff = await sign_in(http, proxy, STAFF)
        alice = await sign_in(http, proxy, ALICE)
        tally = Tally()  # the run's clock starts once everyone is signed in
        load = [asyncio.create_task(read_licenses(http, proxy.url, alice, tally))
                for _ in range(READERS)]
        load.append(asyncio.create_task(listen_like_a_browser(http, proxy.url, alice, tally)))
        await asyncio.sleep(2)  # the listener is connected before the first announcement
        announcing = asyncio.create_task(announce_steadily(http, proxy.url, staff, tally,
                                                           count=5 * 26))
        try:
            await asyncio.sleep(4)
            for n, portal in enumerate(portals, start=1):
                marks.append(Mark(tally.now(), f"portal-{n} stops"))
                await asyncio.to_thread(portal.restart)
                marks.append(Mark(tally.now(), f"portal-{n} back"))
                await asyncio.sleep(7)  # nginx's fail_timeout (5 s) is over: it is used again
            await announcing
            async with asyncio.timeout(10):
                while len(tally.received) < len(tally.sent):
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1)  # anything sent twice would have arrived by now
        finally:
            announcing.cancel()
            for task in load:
                task.cancel()
            await asyncio.gather(announcing, *load, return_exceptions=True)
    return tally, marks


def _target(portal: LivePortal) -> str:
    return portal.url.removeprefix("http://")


def _series(base: str, tally: Tally, portals: list[LivePortal]) -> list[Series]:
    """Requests and 5xx answers per second by instance, from Prometheus, and the failures
    the clients saw."""
    names = {_target(portal): f"portal-{n}" for n, portal in enumerate(portals, start=1)}
    end = time.time()
    start = end - tally.now()
    wanted = {"requests/s": 'sum by (instance) (rate(portal_http_requests_total'
                            '{route!="/metrics"}[3s]))',
              # (0 where there were none, rather than no line at all)
              "5xx/s": 'sum by (instance) (rate(portal_http_requests_total'
                       '{status=~"5..",route!="/api/v1/notifications/stream"}[3s])) or '
                       'sum by (instance) (0 * rate(portal_http_requests_total[3s]))'}
    series = []
    for what, promql in wanted.items():
        for found in sorted(query_range(base, promql, start, end),
                            key=lambda found: names[found["metric"]["instance"]]):
            points = [(t - start, float(v)) for t, v in found["values"]]
            series.append(Series(f"{names[found['metric']['instance']]} {what}", points,
                                 dashed=what != "requests/s"))
    failures = Counter(int(at) for at, _ in tally.failed)
    series.append(Series("failed for clients", [(float(s), float(failures[s]))
                                                for s in range(int(tally.now()) + 1)],
                         dashed=True))
    return series
