"""Benchmark: PDF rendering, the cache, and the event loop while PDFs render.

Run on demand (not part of the suite):  .venv/bin/python -m tests.bench.bench_pdf
Prints the cold render (worker processes start and import WeasyPrint), the warm render, a
cached hit, and the event-loop lag (p99) while 20 PDFs render at once. Goals: a cached hit
at least 20x faster than a warm render; loop lag p99 under 50 ms.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import UTC, date, datetime

from adapters.system import Uuid7Ids
from app.config import load_settings
from app.container import open_services
from app.domain.cabinets import CabinetKind
from app.domain.licensing import DocumentKind, License
from app.domain.users import SYSTEM
from app.services import Services
from app.services.catalog import ProductDraft
from tests.bench.bench_auth import loop_lag


async def licenses(services: Services, count: int) -> list[str]:
    product = await services.catalog.create(SYSTEM, ProductDraft(
        code="bench", name="Bench Product", bucket="releases"))
    cabinet = await services.cabinets.create(SYSTEM, "Bench Customer", CabinetKind.CUSTOMER,
                                             None)
    ids, now, made = Uuid7Ids(), datetime.now(UTC), []
    async with services.storage.unit_of_work() as uow:
        for n in range(count):
            license_ = License(id=ids.new_id(), number=f"LIC-2026-{n:06d}",
                               product_id=product.id, cabinet_id=cabinet.id,
                               valid_from=date(2026, 1, 1), valid_to=date(2027, 1, 1),
                               revoked_at=None, purchase_item=None, created_at=now,
                               updated_at=now, edition="Enterprise", seats=n + 1)
            await uow.licenses.add(license_)
            made.append(license_.id)
        await uow.commit()
    return made


async def timed(services: Services, license_id: str) -> float:
    started = time.perf_counter()
    rendered = await services.documents.pdf(SYSTEM, DocumentKind.LICENSE, license_id)
    assert rendered.content and rendered.content.startswith(b"%PDF")
    return time.perf_counter() - started


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(environ={
            "PORTAL_DATA_DIR": folder, "PORTAL_PDF__WARM_ON_START": "false",
            "PORTAL_PDF__WORKERS": "2", "PORTAL_LOGGING__LEVEL": "WARNING"})
        async with open_services(settings) as services:
            ids = await licenses(services, 30)
            cold = await timed(services, ids[0])
            warm = statistics.median([await timed(services, i) for i in ids[1:6]])
            cached = statistics.median([await timed(services, ids[1]) for _ in range(50)])

            stop, lags = asyncio.Event(), list[float]()
            probe = asyncio.create_task(loop_lag(stop, lags))
            started = time.perf_counter()
            await asyncio.gather(*(timed(services, i) for i in ids[6:26]))
            burst = time.perf_counter() - started
            stop.set()
            await probe
            p99 = statistics.quantiles(lags, n=100)[98]
    print(f"cold render (workers start)   {cold * 1000:8.1f} ms")
    print(f"warm render (median of 5)     {warm * 1000:8.1f} ms")
    print(f"cached hit (median of 50)     {cached * 1000:8.2f} ms   "
          f"{warm / cached:,.0f}x faster than a warm render (goal >= 20x)")
    print(f"20 renders at once            {burst * 1000:8.1f} ms with "
          f"{settings.pdf.workers} workers")
    print(f"event-loop lag p99 meanwhile  {p99 * 1000:8.1f} ms   (goal < 50 ms; "
          f"max {max(lags) * 1000:.1f} ms over {len(lags)} samples)")


if __name__ == "__main__":
    asyncio.run(main())
