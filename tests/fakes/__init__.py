"""Hand-written fakes of the ports, for unit tests of the core without I/O."""

from tests.fakes.storage import FakeStorage, FakeUnitOfWork
from tests.fakes.system import (
    FakeBlobCache,
    FakeClock,
    FakeHelpdesk,
    FakeIds,
    FakeLicenseSigner,
    FakeMailer,
    FakeObjectStore,
    FakePasswordHasher,
    FakeRenderer,
    FakeSpreadsheets,
    FakeTokenCodec,
    RecordingEventBus,
)

__all__ = ["FakeBlobCache", "FakeClock", "FakeHelpdesk", "FakeIds", "FakeLicenseSigner",
           "FakeMailer", "FakeObjectStore", "FakePasswordHasher", "FakeRenderer",
           "FakeSpreadsheets", "FakeStorage", "FakeTokenCodec", "FakeUnitOfWork",
           "RecordingEventBus"]
