"""Contract of the document ports: the PDF renderer and the result cache."""

from __future__ import annotations

import asyncio
import io
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pypdf
import pytest

from adapters.memory import LruBlobCache
from adapters.weasyprint import WeasyPrintRenderer
from app.config import PROJECT_ROOT
from ports.documents import BlobCache, DocumentRenderer

TEMPLATE = "<html><body><h1>{{ title }}</h1><p>{{ qr_svg(link) }}</p></body></html>"


@pytest.fixture
async def renderer(tmp_path: Path) -> AsyncIterator[DocumentRenderer]:
    (tmp_path / "pdf").mkdir()
    (tmp_path / "pdf" / "doc.html").write_text(TEMPLATE)
    shutil.copy(PROJECT_ROOT / "templates" / "pdf" / "warm-up.html", tmp_path / "pdf")
    adapter = WeasyPrintRenderer(tmp_path, workers=1, warm=False)
    yield adapter
    await adapter.close()


async def test_renders_the_first_template_that_exists(renderer: DocumentRenderer) -> None:
    pdf = await renderer.render_pdf(["pdf/missing.html", "pdf/doc.html"],
                                    {"title": "Hello PDF", "link": "https://example.test/x"})
    assert pdf.startswith(b"%PDF")
    text = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "Hello PDF" in text


async def test_fingerprints_follow_the_template_and_the_context(
        renderer: DocumentRenderer, tmp_path: Path) -> None:
    names = ["pdf/missing.html", "pdf/doc.html"]
    first = renderer.fingerprint(names, {"title": "A", "link": "x"})
    assert first == renderer.fingerprint(names, {"link": "x", "title": "A"})
    assert first != renderer.fingerprint(names, {"title": "B", "link": "x"})
    (tmp_path / "pdf" / "doc.html").write_text(TEMPLATE + "<!-- changed -->")
    assert first != renderer.fingerprint(names, {"title": "A", "link": "x"})


async def test_rendering_happens_off_the_event_loop(renderer: DocumentRenderer) -> None:
    order: list[str] = []

    async def meanwhile() -> None:
        order.append("loop ran")

    task = asyncio.create_task(meanwhile())
    await renderer.render_pdf(["pdf/doc.html"], {"title": "T", "link": "x"})
    order.append("rendered")
    await task
    assert order == ["loop ran", "rendered"]


async def test_a_failing_warm_up_is_logged_and_does_not_stop_start_up(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    adapter = WeasyPrintRenderer(tmp_path, workers=1, warm=True)  # no warm-up template here
    with caplog.at_level(logging.ERROR):
        await adapter.open()
    assert "PDF rendering does not work here" in caplog.text
    await adapter.close()


async def test_one_worker_is_warmed_and_more_start_when_renders_overlap(
        tmp_path: Path) -> None:
    (tmp_path / "pdf").mkdir()
    (tmp_path / "pdf" / "doc.html").write_text(TEMPLATE)
    shutil.copy(PROJECT_ROOT / "templates" / "pdf" / "warm-up.html", tmp_path / "pdf")
    adapter = WeasyPrintRenderer(tmp_path, workers=3, warm=True)
    try:
        await adapter.open()
        assert adapter.worker_count() == 1
        # ProcessPoolExecutor hands over a result before its manager thread marks the worker
        # idle again (Python 3.11): a job sent in that instant starts a worker of its own.
        # A moment lets the manager catch up, as it does between real requests.
        await asyncio.sleep(0.2)
        await adapter.render_pdf(["pdf/doc.html"], {"title": "T", "link": "x"})
        assert adapter.worker_count() == 1  # the warm one was idle
        pdfs = await asyncio.gather(*(adapter.render_pdf(["pdf/doc.html"], {
            "title": f"T{n}", "link": "x"}) for n in range(3)))
        assert all(pdf.startswith(b"%PDF") for pdf in pdfs)
        assert adapter.worker_count() == 3
    finally:
        await adapter.close()


@pytest.fixture(params=["lru"])
def cache(request: pytest.FixtureRequest) -> BlobCache:
    return LruBlobCache(max_bytes=10)


async def test_the_cache_keeps_recent_values_within_its_size(cache: BlobCache) -> None:
    await cache.put("a", b"1234")
    await cache.put("b", b"5678")
    assert await cache.get("a") == b"1234"  # now the most recently used
    await cache.put("c", b"90ab")  # 12 bytes > 10: the least recently used goes
    assert await cache.get("b") is None
    assert await cache.get("a") == b"1234" and await cache.get("c") == b"90ab"
    await cache.put("huge", b"x" * 11)  # larger than the whole cache: not kept
    assert await cache.get("huge") is None and await cache.get("c") == b"90ab"
    await cache.put("a", b"new")
    assert await cache.get("a") == b"new"


async def test_a_rendering_past_its_time_limit_is_stopped_and_the_next_one_works(
        renderer: DocumentRenderer, tmp_path: Path) -> None:
    from ports.documents import RenderingTooSlow

    # Enough pages that a tenth of a second is never enough.
    (tmp_path / "pdf" / "long.html").write_text(
        "<html><body>{% for n in range(3000) %}<p>Row {{ n }}</p>{% endfor %}</body></html>")
    with pytest.raises(RenderingTooSlow, match="stopped"):
        await renderer.render_pdf(["pdf/long.html"], {}, time_limit=0.1)
    pdf = await renderer.render_pdf(["pdf/doc.html"], {"title": "After", "link": "x"},
                                    time_limit=60)
    assert "After" in pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
