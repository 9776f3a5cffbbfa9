"""Ports for printable documents: HTML templates rendered to PDF, and a cache for results."""

from __future__ import annotations

from typing import Any, Protocol


class RenderingFailed(Exception):
    """The renderer cannot work (its worker processes died, a system library is missing)."""


class RenderingTooSlow(RenderingFailed):
    """The document took longer than its time limit; its rendering was stopped."""


class DocumentRenderer(Protocol):
    def fingerprint(self, templates: list[str], context: dict[str, Any]) -> str:
        """A hash of everything a rendering depends on: the source of the first of
        `templates` that exists, and the context. Equal fingerprints, equal documents."""

    async def render_pdf(self, templates: list[str], context: dict[str, Any], *,
                         time_limit: float | None = None) -> bytes:
        """Render the first of `templates` that exists with `context`, as PDF. Runs off the
        event loop (another process); templates may call qr_svg(text) for a QR code.
        RenderingFailed when the renderer cannot work at all; RenderingTooSlow, with the
        work stopped, past `time_limit` seconds."""


class BlobCache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes) -> None:
        """Keep `value` under `key`, possibly forgetting older entries to make room."""
