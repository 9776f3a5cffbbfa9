"""PDF documents: jinja2 templates rendered by WeasyPrint in a pool of worker processes.

WeasyPrint is CPU-bound (about 135 ms of CPU for a one-page certificate) and holds the GIL,
so it runs in other processes; the pool starts on first use, or at start-up with `warm`.
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import importlib.metadata
import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
import segno

from ports.documents import RenderingFailed, RenderingTooSlow

log = logging.getLogger(__name__)
try:
    _WEASYPRINT_VERSION = importlib.metadata.version("weasyprint")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover
    _WEASYPRINT_VERSION = "?"
_environment: jinja2.Environment | None = None


def qr_svg(text: str) -> str:
    """An inline SVG QR code of `text`, for templates."""
    return str(segno.make(text, error="m").svg_inline(scale=3, border=2, dark="#0b1f33"))


def _environment_for(templates_dir: str) -> jinja2.Environment:
    global _environment  # one per worker process, built on its first job
    if _environment is None:
        _environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(templates_dir),
            autoescape=jinja2.select_autoescape(default=True), undefined=jinja2.StrictUndefined)
        # segno writes the SVG itself and escapes the text it encodes.
        _environment.globals["qr_svg"] = lambda text: markupsafe.Markup(qr_svg(text))  # noqa: S704
    return _environment


def _render(templates_dir: str, templates: list[str], context: dict[str, Any]) -> bytes:
    """Runs in a worker process."""
    import weasyprint  # imported in the worker only: it takes most of a second

    html = _environment_for(templates_dir).select_template(templates).render(context)
    return bytes(weasyprint.HTML(string=html, base_url=templates_dir).write_pdf())


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent: int) -> None:
    """Runs first in each worker: it ends when the portal does, even when the portal is
    killed outright and no shutdown runs (a worker holds 100 MB or more)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # gone before the line above took effect
        os._exit(0)
    # Ctrl-C in a terminal reaches the whole process group: the portal stops its workers
    # itself (after its drain), and a worker's KeyboardInterrupt would only print a trace.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:  # elsewhere, and as a second line: the parent changes when it dies
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def _warm(templates_dir: str) -> int:
    _render(templates_dir, ["pdf/warm-up.html"], {})
    return os.getpid()


class WeasyPrintRenderer:
    def __init__(self, templates_dir: Path, workers: int, warm: bool) -> None:
        self._dir = str(templates_dir)
        self._workers = workers
        self._warm = warm
        self._in_flight = self._rendered = 0
        self._render_seconds = 0.0
        self._pool: ProcessPoolExecutor | None = None
        self._stamp: tuple[tuple[str, int, int], ...] | None = None
        self._digest = ""

    async def open(self) -> None:
        """With `warm`: start one worker and render once, so the first PDF is not the one
        that waits for WeasyPrint to load (1.5 s). The others start when renders overlap
        (a spawned pool starts workers as they are needed): each idle one is 100 MB, and
        most PDFs are answered from the cache."""
        if not self._warm:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(self._started(), _warm, self._dir)
        except Exception as exc:
            # The portal serves everything else; PDF requests answer 503 until this is fixed.
            log.error("PDF rendering does not work here (is Pango installed?): %s", exc)
            await self.close()

    def worker_count(self) -> int:
        """Worker processes running now."""
        return len(getattr(self._pool, "_processes", None) or {})

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

    def _end_workers(self, pool: ProcessPoolExecutor) -> None:
        if self._pool is pool:
            self._pool = None
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # Spawned, not forked: a fork would copy the event loop's threads and locks.
            self._pool = ProcessPoolExecutor(
                self._workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_die_with_parent, initargs=(os.getpid(),))
        return self._pool

    def fingerprint(self, templates: list[str], context: dict[str, Any]) -> str:
        # Templates extend and include each other, so every PDF template counts: a change
        # to any of them (or to WeasyPrint) makes every document a new version.
        digest = hashlib.sha256(self._sources_digest().encode())
        digest.update("\0".join(templates).encode())
        digest.update(json.dumps(context, sort_keys=True, default=str).encode())
        return digest.hexdigest()[:32]

    def _sources_digest(self) -> str:
        folder = Path(self._dir) / "pdf"
        files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
        stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
        if stamp != self._stamp:
            digest = hashlib.sha256(_WEASYPRINT_VERSION.encode())
            for path in files:
                digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
            self._stamp, self._digest = stamp, digest.hexdigest()
        return self._digest

    def stats(self) -> dict[str, float]:
        return {"workers": self._workers, "in_flight": self._in_flight,
                "busy": min(self._in_flight, self._workers),
                "queued": max(0, self._in_flight - self._workers),
                "rendered": self._rendered, "render_seconds": self._render_seconds}

    async def render_pdf(self, templates: list[str], context: dict[str, Any], *,
                         time_limit: float | None = None) -> bytes:
        started = time.monotonic()
        self._in_flight += 1
        try:
            pdf = await self._render_pdf(templates, context, time_limit)
        finally:
            self._in_flight -= 1
        self._rendered += 1
        self._render_seconds += time.monotonic() - started
        return pdf

    async def _render_pdf(self, templates: list[str], context: dict[str, Any],
                          time_limit: float | None) -> bytes:
        for attempt in (1, 2):
            try:
                pool = self._started()
                rendering = asyncio.get_running_loop().run_in_executor(
                    pool, _render, self._dir, templates, context)
                try:
                    async with asyncio.timeout(time_limit):
                        return await rendering
                except TimeoutError:
                    # A worker cannot be told to stop one job: it is ended, and the pool
                    # with it (a job of another caller in it is tried again on a new one).
                    self._end_workers(pool)
                    raise RenderingTooSlow(f"the PDF took longer than {time_limit:.0f} s; "
                                           "its rendering was stopped") from None
            except BrokenProcessPool as exc:
                # A dead pool stays dead: drop it; one more try starts a fresh one.
                self._pool = None
                if attempt == 2:
                    raise RenderingFailed(f"PDF rendering failed: {exc}") from exc
            except (OSError, jinja2.TemplateError) as exc:
                raise RenderingFailed(f"PDF rendering failed: {type(exc).__name__}: {exc}") \
                    from exc
        raise AssertionError("unreachable")
