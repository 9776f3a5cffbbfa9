"""Stopping without failing anyone: a SIGTERM drains (answers close their connections,
/readyz says 503, live streams end and new ones are sent elsewhere), then requests in
flight finish."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp

from tests.e2e.test_cluster import ALICE, open_stream, sign_in
from tests.live import (
    live_portal,
)


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
