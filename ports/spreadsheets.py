"""Port for spreadsheets: a report's rows written into a workbook file, in constant memory."""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence
from pathlib import Path
from typing import Protocol

from app.domain.reports import Column, Row, Summary


class SpreadsheetWriter(Protocol):
    async def write(self, path: Path, title: str, columns: Sequence[Column],
                    batches: AsyncIterable[list[Row]], summary: Summary) -> None:
        """Write the rows as they come (never all of them in memory; the work runs off the
        event loop), then a summary sheet from `summary`, which the rows have filled by
        then. More rows than a sheet holds go on to further sheets. Text is written as
        text, never as a formula."""
