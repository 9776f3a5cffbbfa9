"""`portal check`: whether each dependency answers, for operators."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from app.domain.paging import MAX_LIMIT, PageRequest
from app.domain.users import SYSTEM
from app.services import Services

# How long each dependency has to answer.
CHECK_SECONDS = 10


async def check_dependencies(services: Services) -> int:
    """One line per dependency: ok or FAILED, and what was found; 1 if any failed."""
    async def storage() -> str:
        await services.storage.ping()
        return "answers"

    async def objects() -> str:
        products = (await services.catalog.list_visible(SYSTEM, PageRequest(MAX_LIMIT))).items
        buckets = sorted({product.bucket for product in products})
        for bucket in buckets:
            await services.objects.list_objects(bucket, "", limit=1)
        return f"{len(buckets)} bucket(s) of releases readable: {', '.join(buckets) or '-'}"

    checks: dict[str, Callable[[], Awaitable[str]]] = {
        "storage": storage, "object store": objects, "event bus": services.events.probe,
        "mail": services.mailer.probe, "helpdesk": services.helpdesk.probe}
    failed = 0
    for name, check in checks.items():
        started = time.monotonic()
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                found = await check()
            state = "ok"
        except Exception as exc:
            found = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            state, failed = "FAILED", failed + 1
        print(f"{state:<7}{name:<13}{found} ({(time.monotonic() - started) * 1000:.0f} ms)")
    return 1 if failed else 0
