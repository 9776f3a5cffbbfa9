"""Clients that announce more than they send, or send it slowly, on real sockets against
`portal serve`: a declared length over the limit is refused at once; a body that stops is a
408; request headers that dribble in are cut off. None of them holds the connection."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator

import pytest

from tests.live import LivePortal, live_portal

LIMITS = {"PORTAL_SERVER__HEADER_TIMEOUT_SECONDS": "1",
          "PORTAL_SERVER__BODY_TIMEOUT_SECONDS": "1"}


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePortal]:
    with live_portal(tmp_path_factory.mktemp("slow"), demo=False, env=LIMITS) as running:
        yield running


def connect(portal: LivePortal) -> socket.socket:
    host, port = portal.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def answer(sock: socket.socket) -> bytes:
    """Everything the server says until it closes (or 10 s pass)."""
    found = b""
    try:
        while chunk := sock.recv(65536):
            found += chunk
            if b"\r\n\r\n" in found and b"Connection: close" not in found and \
                    found.split(b"\r\n", 1)[0].endswith((b"413 Request Entity Too Large",
                                                          b"408 Request Timeout")):
                break
    except (TimeoutError, ConnectionResetError):
        pass
    return found


@pytest.mark.parametrize("path", ["/api/v1/jwt", "/login", "/api/v1/issues/x/attachments"])
def test_a_declared_length_over_the_limit_is_refused_at_once(portal: LivePortal,
                                                             path: str) -> None:
    with connect(portal) as sock:
        started = time.monotonic()
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: portal\r\nContent-Type: application/json"
                     "\r\nContent-Length: 99999999999\r\n\r\n{".encode())
        said = answer(sock)
        assert said.startswith(b"HTTP/1.1 413"), said[:200]
        assert time.monotonic() - started < 0.9  # not waiting for the body at all


def test_a_body_that_stops_arriving_is_a_408(portal: LivePortal) -> None:
    with connect(portal) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /api/v1/jwt HTTP/1.1\r\nHost: portal\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\"")
        said = answer(sock)
        assert said.startswith(b"HTTP/1.1 408"), said[:200]
        assert b"/problems/request-timeout" in said
        assert 0.9 < time.monotonic() - started < 5


def test_request_headers_that_dribble_in_are_cut_off(portal: LivePortal) -> None:
    with connect(portal) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: portal\r\nX-Slow: ")
        closed_after = None
        for _ in range(40):  # a header byte every 0.1 s, never the blank line
            if select.select([sock], [], [], 0.1)[0] and sock.recv(1) == b"":
                closed_after = time.monotonic() - started
                break
            try:
                sock.sendall(b"x")
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - started
                break
        assert closed_after is not None, "the server kept a connection whose head never ended"
        assert closed_after < 3


def test_a_normal_request_still_works(portal: LivePortal) -> None:
    with connect(portal) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: portal\r\nConnection: close\r\n\r\n")
        said = answer(sock)
    assert said.startswith(b"HTTP/1.1 200") and b'"status":"ok"' in said
