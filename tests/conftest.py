"""Fixtures shared by every test: settings on a fresh data folder, both storage adapters,
the running app, and a small organisation tree with a user per role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from app.config import Settings, load_settings
from app.web.app import create_app
from tests.pg import temporary_database
from tests.world import Client, ClientFactory, SettingsFor, World, build_world

if TYPE_CHECKING:
    from tests.helpdesk import DjangoHelpdeskServer

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

# The cheapest argon2id the portal accepts (OWASP's minimum): tests hash often.
TEST_ENV = {
    "PORTAL_AUTH__ARGON2__TIME_COST": "2",
    "PORTAL_AUTH__ARGON2__MEMORY_COST_KIB": "19456",
    "PORTAL_AUTH__ARGON2__PARALLELISM": "1",
    "PORTAL_LOGGING__ACCESS_LOG": "false",
    # Stopping drains this long (3 s in production), then gives requests in flight this
    # long (30 s): a test's portal stops within live_portal's 20 s whatever a client left.
    "PORTAL_SERVER__DRAIN_SECONDS": "0.2",
    "PORTAL_SERVER__SHUTDOWN_GRACE_SECONDS": "5",
    "PORTAL_FEEDS__PURCHASES__SECRET": "test-feed-secret",
    "PORTAL_SUPPORT__FEED_SECRET": "test-support-secret",
    # A test that renders starts the worker processes on first use.
    "PORTAL_PDF__WARM_ON_START": "false",
    "PORTAL_PDF__WORKERS": "1",
    "PORTAL_CATALOG__SCAN_INTERVAL": "0",
    # Tests run the expiry job themselves, on their own dates.
    "PORTAL_NOTIFICATIONS__REMINDER_INTERVAL": "0",
    "PORTAL_REPORTS__SCHEDULE_INTERVAL": "0",
    # Every test comes from 127.0.0.1 and the PostgreSQL counts are the session's: the
    # limits' own tests set theirs.
    "PORTAL_RATE_LIMITS__VERIFY_PER_ADDRESS": "1000000",
    "PORTAL_RATE_LIMITS__FEEDS_PER_ADDRESS": "1000000",
    "PORTAL_RATE_LIMITS__REPORTS_PER_USER": "1000000",
    "PORTAL_RATE_LIMITS__ARCHIVES_PER_USER": "1000000",
    "PORTAL_RATE_LIMITS__PASSWORD_LINKS_PER_ADDRESS": "1000000",
}


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """A database of its own for this test session, dropped at the end."""
    with temporary_database("portal_test") as dsn:
        yield dsn


def make_settings(data_dir: Path, backend: str = "sqlite", dsn: str | None = None,
                  **env: str) -> Settings:
    environ = {**TEST_ENV, "PORTAL_DATA_DIR": str(data_dir), "PORTAL_STORAGE__ADAPTER": backend,
               **env}
    if dsn:
        environ["PORTAL_STORAGE__DSN"] = dsn
    return load_settings(environ=environ)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings_for(tmp_path: Path, request: pytest.FixtureRequest) -> SettingsFor:
    """Settings for a backend, with extra PORTAL_* overrides."""
    def make(backend: str = "sqlite", **env: str) -> Settings:
        dsn = request.getfixturevalue("pg_dsn") if backend == "postgres" else None
        return make_settings(tmp_path / "var", backend, dsn, **env)
    return make


@pytest.fixture
def settings(settings_for: SettingsFor) -> Settings:
    return settings_for("sqlite")


@pytest.fixture
async def client(aiohttp_client: ClientFactory, settings_for: SettingsFor, backend: str
                 ) -> Client:
    """The app, once on SQLite and once on PostgreSQL."""
    return await aiohttp_client(create_app(settings_for(backend)))


@pytest.fixture
async def world(client: Client) -> World:
    return await build_world(client)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped or expected-to-fail test is not a pass: the run fails if there is one."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or exitstatus != 0:
        return
    unproven = [report.nodeid for kind in ("skipped", "xfailed", "xpassed")
                for report in reporter.stats.get(kind, [])]
    if unproven:
        reporter.write_line("not run to a verdict: " + ", ".join(unproven), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, with the bucket "releases"."""
    import boto3

    from tests.s3 import CREDENTIALS, moto_server

    with moto_server() as endpoint:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id=CREDENTIALS["access_key_id"],
                     aws_secret_access_key=CREDENTIALS["secret_access_key"]
                     ).create_bucket(Bucket="releases")
        yield endpoint


@pytest.fixture(scope="session")
def django_helpdesk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DjangoHelpdeskServer]:
    """A real django-helpdesk (its own virtual environment, cached between runs) on a free
    loopback port, shared by the tests that only add to it."""
    from tests.helpdesk import running_django_helpdesk

    with running_django_helpdesk(tmp_path_factory.mktemp("django-helpdesk")) as server:
        yield server
