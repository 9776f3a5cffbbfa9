"""The unit of work's events, on every storage adapter and on the fake: what an event
causes is written in the same transaction just before the commit, and the events are
published once it has committed, never when it rolls back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.domain.events import DomainEvent, MailQueued
from app.services.work import Transactions
from ports.storage import Storage, UnitOfWork
from tests.contract.test_storage import BACKENDS, migrated, new_cabinet, stored_cabinet
from tests.fakes import FakeStorage, RecordingEventBus


@pytest.fixture(params=[*BACKENDS, "fake"])
async def any_storage(request: pytest.FixtureRequest, tmp_path: Path
                      ) -> AsyncIterator[Storage]:
    """Both SQL adapters, and the fake of the port."""
    if request.param == "fake":
        yield FakeStorage()
        return
    async with migrated(request.param, tmp_path, request) as adapter:
        yield adapter


async def named(storage: Storage, cabinet_id: str) -> str | None:
    if isinstance(storage, FakeStorage):
        found = storage.state.cabinets.get(cabinet_id)
        return found.name if found else None
    cabinet = await stored_cabinet(storage, cabinet_id)  # type: ignore[arg-type]
    return cabinet.name if cabinet else None


async def test_committed_events_are_published_once_after_the_transaction(
        any_storage: Storage) -> None:
    bus = RecordingEventBus()
    work = Transactions(any_storage, bus)
    cabinet = new_cabinet()
    async with work() as uow:
        await uow.cabinets.add(cabinet)
        uow.events.record(MailQueued(count=1), MailQueued(count=2))
        assert bus.published == []
        await uow.commit()
        assert bus.published == []  # not before the connection is given back
    assert bus.published == [MailQueued(count=1), MailQueued(count=2)]
    assert await named(any_storage, cabinet.id) == cabinet.name


async def test_events_of_a_rollback_are_never_published(any_storage: Storage) -> None:
    bus = RecordingEventBus()
    work = Transactions(any_storage, bus)
    cabinet = new_cabinet()
    async with work() as uow:
        await uow.cabinets.add(cabinet)
        uow.events.record(MailQueued(count=1))
    with pytest.raises(RuntimeError):
        async with work() as uow:
            uow.events.record(MailQueued(count=2))
            raise RuntimeError("the use case failed")
    async with work() as uow:
        uow.events.record(MailQueued(count=3))
        await uow.commit()
        uow.events.record(MailQueued(count=4))  # after the last commit: rolled back
    assert bus.published == [MailQueued(count=3)]
    assert await named(any_storage, cabinet.id) is None


async def test_what_events_cause_is_written_in_their_transaction(any_storage: Storage) -> None:
    bus = RecordingEventBus()
    made: list[str] = []

    async def prepare(uow: UnitOfWork, events: list[DomainEvent]) -> None:
        """Each event writes a cabinet; the first also records another event."""
        for event in events:
            assert isinstance(event, MailQueued)
            if event.count < 0:
                raise RuntimeError("cannot prepare")
            cabinet = new_cabinet()
            await uow.cabinets.add(cabinet)
            made.append(cabinet.id)
            if event.count == 1:
                uow.events.record(MailQueued(count=10))

    work = Transactions(any_storage, bus, prepare)
    async with work() as uow:
        uow.events.record(MailQueued(count=1))
        await uow.commit()
    assert bus.published == [MailQueued(count=1), MailQueued(count=10)]
    assert len(made) == 2
    assert all([await named(any_storage, cabinet_id) for cabinet_id in made])

    # A step that fails takes the change down with it: nothing commits, nothing is told.
    change = new_cabinet()
    with pytest.raises(RuntimeError):
        async with work() as uow:
            await uow.cabinets.add(change)
            uow.events.record(MailQueued(count=-1))
            await uow.commit()
    assert await named(any_storage, change.id) is None
    assert len(bus.published) == 2


async def test_a_failure_after_the_commit_still_publishes_what_was_committed(
        any_storage: Storage) -> None:
    bus = RecordingEventBus()
    work = Transactions(any_storage, bus)
    with pytest.raises(RuntimeError):
        async with work() as uow:
            await uow.cabinets.add(new_cabinet())
            uow.events.record(MailQueued(count=1))
            await uow.commit()
            raise RuntimeError("after the commit")
    assert bus.published == [MailQueued(count=1)]
