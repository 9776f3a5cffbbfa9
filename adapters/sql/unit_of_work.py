"""The storage port's unit of work on any `SqlSession`: every repository over one
transaction."""

from __future__ import annotations

import zlib

from adapters.sql.audit import SqlAudit
from adapters.sql.cabinets import SqlCabinets
from adapters.sql.catalog import SqlProducts, SqlReleases
from adapters.sql.documents import SqlCertificates, SqlLicenses, SqlTransfers
from adapters.sql.identity import SqlLoginThrottle, SqlSessions, SqlUsers
from adapters.sql.notifications import SqlNotifications
from adapters.sql.outbox import SqlOutbox
from adapters.sql.purchases import SqlPurchaseEvents
from adapters.sql.reminders import SqlReminders
from adapters.sql.session import SqlSession
from adapters.sql.subscriptions import SqlReportSubscriptions
from adapters.sql.support import SqlSupport, SqlSupportDeliveries
from ports.storage import EventLog


class SqlUnitOfWork:
    """Repositories over one transaction; the adapter's context manager owns begin/rollback."""

    def __init__(self, db: SqlSession, events: EventLog | None = None, *,
                 read_only: bool = False) -> None:
        self._read_only = read_only
        self.cabinets = SqlCabinets(db)
        self.products = SqlProducts(db)
        self.licenses = SqlLicenses(db)
        self.certificates = SqlCertificates(db)
        self.transfers = SqlTransfers(db)
        self.purchases = SqlPurchaseEvents(db)
        self.releases = SqlReleases(db)
        self.notifications = SqlNotifications(db)
        self.outbox = SqlOutbox(db)
        self.reminders = SqlReminders(db)
        self.users = SqlUsers(db)
        self.sessions = SqlSessions(db)
        self.audit = SqlAudit(db)
        self.login_throttle = SqlLoginThrottle(db)
        self.support = SqlSupport(db)
        self.support_deliveries = SqlSupportDeliveries(db)
        self.report_subscriptions = SqlReportSubscriptions(db)
        self.events = events or EventLog()
        self._db = db

    async def try_lock(self, name: str) -> bool:
        if self._read_only:
            raise RuntimeError("a read-only unit of work holds no transaction to lock in")
        if self._db.dialect != "postgres":
            return True  # SQLite lets one writer in at a time, and serves one process
        row = await self._db.fetch_one("SELECT pg_try_advisory_xact_lock(:key) AS locked",
                                       {"key": zlib.crc32(name.encode())})
        return bool(row and row["locked"])

    async def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work commits nothing")
        await self.events.commit(self, self._commit)

    async def _commit(self) -> None:
        await self._db.execute("COMMIT")
        await self._db.execute("BEGIN")
