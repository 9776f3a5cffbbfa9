"""Clients that hang up mid-request, on real sockets against `portal serve` on PostgreSQL:
their JSON answers are finished anyway, so no statement is cut off and no pool connection
is closed for it (each would cost the pool a new connection, and the log a warning)."""

from __future__ import annotations

import json
import random
import socket
import struct
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import LivePortal, live_portal
from tests.pg import temporary_database

DROPPED = "dropping a PostgreSQL connection"
ROUNDS, AT_ONCE = 15, 32


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePortal]:
    with temporary_database("portal_leave") as dsn, live_portal(
            tmp_path_factory.mktemp("leave"), PORTAL_STORAGE__ADAPTER="postgres",
            PORTAL_STORAGE__DSN=dsn) as running:
        yield running


def sign_in(portal: LivePortal) -> str:
    request = urllib.request.Request(
        f"{portal.url}/api/v1/jwt", headers={"Content-Type": "application/json"},
        data=json.dumps({"email": "admin@acme.example", "password": "demo-acme-admin"}).encode())
    with urllib.request.urlopen(request, timeout=30) as answer:
        return str(json.loads(answer.read())["access_token"])


def hang_up(sock: socket.socket) -> None:
    """Close with a reset, as a client that is killed or times out does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def leave_mid_request(portal: LivePortal, token: str, chance: random.Random) -> None:
    """AT_ONCE requests whose clients are gone while the requests are anywhere between
    their first statement and their last."""
    host, port = portal.url.removeprefix("http://").split(":")
    paths = ["/api/v1/licenses?limit=50", "/api/v1/me", "/api/v1/certificates",
             "/api/v1/cabinets"]
    sockets = []
    for n in range(AT_ONCE):
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(f"GET {paths[n % len(paths)]} HTTP/1.1\r\nHost: portal\r\n"
                     f"Authorization: Bearer {token}\r\n\r\n".encode())
        sockets.append(sock)
    time.sleep(chance.uniform(0, 0.01))
    for sock in sockets:
        hang_up(sock)


def test_requests_whose_clients_leave_cost_no_pool_connection(portal: LivePortal) -> None:
    token = sign_in(portal)
    chance = random.Random(15)
    for _ in range(ROUNDS):
        leave_mid_request(portal, token, chance)
    time.sleep(1)  # the last answers finish

    request = urllib.request.Request(f"{portal.url}/api/v1/me",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert json.loads(answer.read())["user"]["email"] == "admin@acme.example"
    log = portal.log.read_text(errors="replace")
    assert log.count(DROPPED) == 0, log[-3000:]
    # Requests did reach the portal after their clients had gone, and were finished; the
    # log says so of each (the access log cannot: it writes what was answered).
    gone = [line for line in log.splitlines() if "client gone:" in line]
    assert len(gone) >= AT_ONCE, log[-3000:]
    assert all(" (200) " in line for line in gone), gone[:5]


def test_a_portal_stopped_while_it_finishes_answers_stops_cleanly(
        tmp_path: Path) -> None:
    # live_portal stops the portal with SIGTERM and holds it to a clean exit: code 0, and
    # no traceback in its log (the answers finish before the storage closes).
    with temporary_database("portal_leave_stop") as dsn, live_portal(
            tmp_path, PORTAL_STORAGE__ADAPTER="postgres", PORTAL_STORAGE__DSN=dsn) as portal:
        token = sign_in(portal)
        leave_mid_request(portal, token, random.Random(16))
