"""A real Prometheus (Debian's package) scrapes two running portals, with the alert rules and
the dashboard's queries of deploy/."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from app.config import PROJECT_ROOT
from tests.api.test_schemathesis import sign_in
from tests.live import LivePortal, free_port, live_portal

DEPLOY = PROJECT_ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "portal-dashboard.json"
METRIC = re.compile(r"\bportal_[a-z_]+")


def test_the_alert_rules_and_the_example_configuration_pass_promtool() -> None:
    for what, path in (("rules", RULES), ("config", DEPLOY / "prometheus" / "prometheus.yml")):
        done = subprocess.run(["promtool", "check", what, str(path)], capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def query(base: str, promql: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return body["data"]["result"]  # type: ignore[no-any-return]


def query_range(base: str, promql: str, start: float, end: float,
                step: float = 0.5) -> list[dict[str, Any]]:
    """Each series' values over the time range (unix seconds), a sample every step."""
    url = f"{base}/api/v1/query_range?" + urllib.parse.urlencode(
        {"query": promql, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(url, timeout=10) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return body["data"]["result"]  # type: ignore[no-any-return]


def until(check: Any, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


@pytest.fixture
def two_portals(tmp_path: Path) -> Iterator[list[tuple[LivePortal, int]]]:
    ports = [free_port(), free_port()]
    with live_portal(tmp_path / "a", PORTAL_METRICS__PORT=str(ports[0]),
                     PORTAL_METRICS__REFRESH_SECONDS="1") as first, \
            live_portal(tmp_path / "b", PORTAL_METRICS__PORT=str(ports[1]),
                        PORTAL_METRICS__REFRESH_SECONDS="1") as second:
        yield [(first, ports[0]), (second, ports[1])]


@contextmanager
def prometheus(folder: Path, targets: list[str], *, token: str = "",
               rules: bool = False) -> Iterator[str]:
    """Debian's Prometheus scraping the targets every second; its base URL, once it has
    scraped them all."""
    folder.mkdir(parents=True, exist_ok=True)
    config = "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
    if rules:
        shutil.copy(RULES, folder / "alerts.yml")
        config += "rule_files:\n  - alerts.yml\n"
    config += "scrape_configs:\n  - job_name: portal\n"
    if token:
        config += f"    authorization:\n      credentials: {token}\n"
    config += f"    static_configs:\n      - targets: {json.dumps(targets)}\n"
    (folder / "prometheus.yml").write_text(config)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with (folder / "prometheus.log").open("w") as log:
        server = subprocess.Popen(
            ["prometheus", f"--config.file={folder / 'prometheus.yml'}",
             f"--storage.tsdb.path={folder / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT)
    try:
        up = until(lambda: len(_safe(base, "up == 1")) == len(targets))
        assert up, (folder / "prometheus.log").read_text()[-3000:]
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_prometheus_scrapes_each_instance_and_the_dashboard_queries_answer(
        tmp_path: Path, two_portals: list[tuple[LivePortal, int]]) -> None:
    targets = [f"127.0.0.1:{port}" for _, port in two_portals]
    with prometheus(tmp_path / "prometheus", targets, rules=True) as base:
        tokens = [(portal.url, sign_in(portal.url, "admin@acme.example", "demo-acme-admin"))
                  for portal, _ in two_portals]

        def traffic() -> None:  # a request on each instance between scrapes
            for url, token in tokens:
                request = urllib.request.Request(f"{url}/api/v1/licenses",
                                                 headers={"Authorization": f"Bearer {token}"})
                with urllib.request.urlopen(request, timeout=10) as answer:
                    assert answer.status == 200
        rate = ('sum by (instance) (rate(portal_http_requests_total{route="/api/v1/licenses"}'
                "[1m])) > 0")

        def both_rates() -> list[dict[str, Any]] | None:
            traffic()
            found = _safe(base, rate)
            return found if len(found) == 2 else None
        rates = until(both_rates)
        assert rates and {r["metric"]["instance"] for r in rates} == set(targets)
        depth = query(base, "portal_outbox_depth")
        assert {r["metric"]["instance"] for r in depth} == set(targets)
        # Every metric the dashboard and the rules name exists in what was scraped.
        names = {r["metric"]["__name__"] for r in query(base, '{__name__=~"portal_.+"}')}
        wanted = set(METRIC.findall(DASHBOARD.read_text())) | set(METRIC.findall(
            RULES.read_text()))
        assert wanted <= names, wanted - names
        for panel in json.loads(DASHBOARD.read_text())["panels"]:
            for target in panel["targets"]:
                query(base, target["expr"])  # each one parses and runs
        # The rules were loaded, and none fires on two healthy instances.
        with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=10) as answer:
            groups = json.loads(answer.read())["data"]["groups"]
        assert len([r for g in groups for r in g["rules"]]) == 6
        assert query(base, 'ALERTS{alertstate="firing"}') == []


def _safe(base: str, promql: str) -> list[dict[str, Any]]:
    try:
        return query(base, promql)
    except OSError:
        return []
