"""Running the portal's HTTP server, and stopping it without failing anyone (a rolling
restart behind a load balancer):

1. SIGTERM (or SIGINT) starts a drain of `server.drain_seconds`: the process still answers,
   but every answer closes its connection (so the proxy opens its next one elsewhere),
   `/readyz` says 503, live streams end at once (their `retry:` hint has browsers
   reconnect, with Last-Event-ID, and a new stream here answers 503, which a proxy passes
   on to another instance), and the background jobs stop after their current round;
2. then the listener closes (a proxy's next connection is refused and goes elsewhere), the
   connections it accepted last get a moment to send their request, which is answered, and
   the requests in flight get up to `server.shutdown_grace_seconds` to finish;
3. then the services close."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Any

from aiohttp import web

from app.config import Settings
from app.services.background import finish_rounds
from app.web.keys import DRAINING, HUB

log = logging.getLogger("portal")

# How long a connection accepted just before the listener closed has to send its request.
# aiohttp's cleanup closes every idle connection at once, and one accepted a moment earlier,
# whose handler has not started yet, is not closed but ignores its request (aiohttp 3.14): the
# proxy waited the whole grace for an answer. A proxy sends its request as it connects.
LAST_REQUEST_SECONDS = 0.5


def start_draining(app: web.Application) -> None:
    app[DRAINING].set()
    app[HUB].close_all()
    finish_rounds()


async def serve(app: web.Application, settings: Settings, host: str, port: int,
                started: Callable[[], None], **runner_options: Any) -> None:
    runner = web.AppRunner(app, handle_signals=False,
                           shutdown_timeout=settings.server.shutdown_grace_seconds,
                           **runner_options)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        started()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        log.info("stopping: draining for %.1f s, then up to %.0f s for the requests in "
                 "flight", settings.server.drain_seconds, settings.server.shutdown_grace_seconds)
        start_draining(app)
        await asyncio.sleep(settings.server.drain_seconds)
        for site in list(runner.sites):
            await site.stop()
        await asyncio.sleep(LAST_REQUEST_SECONDS)
    finally:
        await runner.cleanup()
