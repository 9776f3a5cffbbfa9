"""The compose stack runs the very files of deploy/ that the end-to-end tests run (nginx in
tests/e2e/test_nginx.py and test_rolling.py, Prometheus in test_prometheus.py), wired to
each other as those tests wire them. (No Docker daemon runs where the tests run: what is
checked here is that the stack and the tested files agree.)"""

from __future__ import annotations

import re
from ipaddress import ip_address, ip_network
from typing import Any

import yaml

from app.config import PROJECT_ROOT

COMPOSE: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
NGINX_CONF = (PROJECT_ROOT / "deploy" / "nginx" / "nginx.conf").read_text()
PORTALS = {name: service for name, service in SERVICES.items() if name.startswith("portal-")}
# The shipped defaults (config.yaml), which the stack does not change.
SERVER = yaml.safe_load((PROJECT_ROOT / "config.yaml").read_text())["server"]


def test_there_are_two_portal_instances_built_from_the_image() -> None:
    assert sorted(PORTALS) == ["portal-1", "portal-2"]
    assert all(service["build"] == "." for service in PORTALS.values())


def test_nginx_runs_the_tested_configuration_in_front_of_the_portal_instances() -> None:
    nginx = SERVICES["nginx"]
    assert "./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    upstreams = re.findall(r"server (portal-\d+):(\d+)", NGINX_CONF)
    assert sorted(name for name, _ in upstreams) == sorted(PORTALS)
    assert {int(p) for _, p in upstreams} == {SERVER["port"]}
    # The certificate nginx names lies in the volume the tls service fills.
    tls_mount = next(v for v in nginx["volumes"] if v.startswith("tls:"))
    folder = tls_mount.split(":")[1]
    for path in re.findall(r"ssl_certificate(?:_key)? (\S+);", NGINX_CONF):
        assert path.startswith(folder + "/")
    assert set(nginx["depends_on"]) >= set(PORTALS) | {"tls"}


def test_the_portals_believe_forwarded_headers_from_nginx_only() -> None:
    nginx_address = ip_address(SERVICES["nginx"]["networks"]["default"]["ipv4_address"])
    [config] = COMPOSE["networks"]["default"]["ipam"]["config"]
    # In the network, and outside the range other containers are given addresses from.
    assert nginx_address in ip_network(config["subnet"])
    assert nginx_address not in ip_network(config["ip_range"])
    for service in PORTALS.values():
        env = service["environment"]
        assert env["PORTAL_WEB__TRUSTED_PROXIES"] == f"{nginx_address}/32"
        assert env["PORTAL_WEB__PROXY_HOPS"] == "1"
        assert env["PORTAL_BASE_URL"].startswith("https://")


def test_prometheus_scrapes_each_instance_on_its_metrics_port() -> None:
    prometheus = SERVICES["prometheus"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    scraped = yaml.safe_load((PROJECT_ROOT / "deploy" / "prometheus" / "prometheus.yml")
                             .read_text())
    targets = {t for job in scraped["scrape_configs"] for c in job["static_configs"]
               for t in c["targets"]}
    assert targets == {f"{name}:{service['environment']['PORTAL_METRICS__PORT']}"
                       for name, service in PORTALS.items()}
    for service in PORTALS.values():  # reachable from Prometheus, not published
        assert service["environment"]["PORTAL_METRICS__HOST"] == "0.0.0.0"
        assert "ports" not in service


def test_an_instance_has_time_to_drain_and_finish_before_it_is_killed() -> None:
    for service in PORTALS.values():
        grace = float(service["stop_grace_period"].removesuffix("s"))
        assert grace > SERVER["drain_seconds"] + SERVER["shutdown_grace_seconds"]
        assert "PORTAL_SERVER__SHUTDOWN_GRACE_SECONDS" not in service["environment"]
