"""`portal feed import` in-process: what it does when the storage fails under it."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from app.cli import IMPORT_AT_ONCE, _feed_import
from app.domain.purchases import PurchaseEvent
from ports.storage import StorageUnavailable
from tests.feed import purchase


async def test_a_storage_outage_stops_the_import_and_says_how_far_it_got(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    feed = tmp_path / "events.jsonl"
    feed.write_text("".join(json.dumps(purchase("dbguard")) + "\n" for _ in range(20)))
    tried: list[str] = []

    async def apply(event: PurchaseEvent) -> tuple[dict[str, Any], bool]:
        tried.append(event.event_id)
        third = len(tried) == 3
        await asyncio.sleep(0.01)
        if third:
            raise StorageUnavailable("PostgreSQL: the server went away")
        return {}, False

    services: Any = SimpleNamespace(purchases=SimpleNamespace(apply=apply))
    with pytest.raises(StorageUnavailable):
        await _feed_import(services, argparse.Namespace(file=feed))
    # What was in flight finished; nothing after the failure was started.
    assert len(tried) <= 3 + IMPORT_AT_ONCE
    out = capsys.readouterr().out.strip()
    assert out.startswith("20 events: ") and out.endswith("0 refused, the rest not tried")
    assert f"{len(tried) - 1} applied" in out
