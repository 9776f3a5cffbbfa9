"""Benchmark: what metrics and traces cost a request, side by side.

Run on demand (not part of the suite):  .venv/bin/python -m tests.bench.bench_operations
Starts four `portal serve` processes on one PostgreSQL database (demo data, config.yaml's
defaults otherwise): one plain, one with Prometheus metrics (`metrics.token`: every request
counted and timed), one with OpenTelemetry traces (`tracing.enabled`, every request sampled,
each SQL statement a span, exported over OTLP/HTTP to a sink in this process that answers
200) and one tracing a tenth of the requests (`tracing.sample_ratio: 0.1`). Each server is
pinned to core 0 and loaded in turn by wrk pinned to core 1 (one thread, 32 connections), in
alternating rounds, so that drifts of the shared machine hit all of them alike. Prints per
request the requests per second of each, the ratio to the plain portal (median and spread
over the rounds), p99 and CPU per request. Needs wrk and taskset.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import statistics
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.bench.bench_api import Run, Server, pin, sign_in, wrk
from tests.live import LivePortal, free_port, live_portal
from tests.pg import temporary_database

ROUNDS = 5


class _Sink(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that takes every batch and keeps nothing."""
    batches = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).batches += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def otlp_sink() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    finally:
        server.shutdown()


def serving(portal: LivePortal) -> Server:
    assert portal.process is not None
    pin(portal.process.pid, "0")
    return Server(portal.url, portal.process.pid)


def main() -> None:
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"bench_operations: needs {tool}")
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-ops-")))
        dsn = stack.enter_context(temporary_database("portal_bench_ops"))
        sink = stack.enter_context(otlp_sink())
        shared = {"PORTAL_STORAGE__ADAPTER": "postgres", "PORTAL_STORAGE__DSN": dsn}
        variants = {
            "plain": {},
            "metrics": {"PORTAL_METRICS__TOKEN": "bench-metrics-token"},
            "traces": {"PORTAL_TRACING__ENABLED": "true", "PORTAL_TRACING__OTLP_ENDPOINT": sink},
            "traces10": {"PORTAL_TRACING__ENABLED": "true", "PORTAL_TRACING__OTLP_ENDPOINT": sink,
                         "PORTAL_TRACING__SAMPLE_RATIO": "0.1"},
        }
        servers = {name: serving(stack.enter_context(live_portal(
            folder, demo=name == "plain", env={**shared, **env})))
            for name, env in variants.items()}
        token = sign_in(servers["plain"].url)
        headers = {"Authorization": f"Bearer {token}"}
        with urllib.request.urlopen(urllib.request.Request(
                f"{servers['plain'].url}/api/v1/licenses?limit=1", headers=headers),
                timeout=10) as answer:
            license_id = json.loads(answer.read())["items"][0]["id"]
        paths = {"GET /api/v1/licenses/{id}": f"/api/v1/licenses/{license_id}",
                 "GET /api/v1/me": "/api/v1/me"}
        print(f"one server core each (taskset), wrk -t1 -c32 on the other; {ROUNDS} "
              "alternating rounds; medians, the ratio to plain and its range in brackets")
        print(f"{'request':28} {'variant':8} {'req/s':>8} {'ratio to plain':>20}"
              f" {'p99 ms':>7} {'CPU ms/request':>15}")
        for label, path in paths.items():
            runs: dict[str, list[Run]] = {name: [] for name in servers}
            for _ in range(ROUNDS):
                for name, server in servers.items():
                    runs[name].append(wrk(server, path, headers))
            for name in servers:
                ratios = [mine.rate / plain.rate
                          for mine, plain in zip(runs[name], runs["plain"], strict=True)]
                print(f"{label:28} {name:8} {_median(runs[name], 'rate'):8,.0f}"
                      f" {statistics.median(ratios):8.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
                      f" {_median(runs[name], 'p99'):7.1f} {_median(runs[name], 'cpu'):15.2f}")
        print(f"OTLP batches received by the sink: {_Sink.batches}")


def _median(runs: list[Run], field: str) -> float:
    return float(statistics.median(getattr(run, field) for run in runs))


if __name__ == "__main__":
    main()
