"""A real django-helpdesk for the tests: its own virtual environment (cached between runs,
never a dependency of the portal), a minimal Django project on SQLite, a staff service
account for the portal, an agent, one queue, started with Django's server on a free
loopback port. Tests act as the agent through its REST API and count what it holds."""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.live import free_port

VERSIONS = ["django-helpdesk==2.6.1", "Django==5.2.19", "djangorestframework==3.18.3"]
CACHE = Path(os.environ.get("PORTAL_TEST_CACHE", Path.home() / ".cache" / "license-portal"))
VENV = CACHE / "django-helpdesk-2.6.1"
SERVICE = ("portal", "portal-service-password")
AGENT = ("agent", "agent-password")

SETTINGS = '''
from pathlib import Path
BASE = Path(__file__).resolve().parent
SECRET_KEY = "tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
    "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
    "django.contrib.sites", "django.contrib.humanize", "rest_framework", "helpdesk",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "helpdesk_urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages"]},
}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE / "db.sqlite3",
                         "OPTIONS": {"timeout": 20}}}
SITE_ID = 1
USE_TZ = True
STATIC_URL = "/static/"
MEDIA_ROOT = BASE / "media"
MEDIA_URL = "/media/"
HELPDESK_TEAMS_MODE_ENABLED = False
REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": [
    "rest_framework.authentication.BasicAuthentication"]}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Basic authentication hashes the password on every call: a cheap hash for tests.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# What the portal accepts (support.attachment_types): its default list refuses .log, .zip...
HELPDESK_VALID_EXTENSIONS = [
    ".png", ".jpg", ".jpeg", ".gif", ".webp", ".pdf", ".txt", ".log", ".csv", ".json", ".xml",
    ".yaml", ".yml", ".zip", ".gz", ".tgz", ".tar", ".7z", ".har"]
LOGGING = {"version": 1, "handlers": {"console": {"class": "logging.StreamHandler"}},
           "loggers": {"django": {"handlers": ["console"], "level": "ERROR"}}}


def _webhooks():
    # Read on every follow-up, so a test points it at a portal that is up.
    path = BASE / "webhooks.txt"
    return path.read_text().split() if path.exists() else []


HELPDESK_GET_FOLLOWUP_WEBHOOK_URLS = _webhooks
HELPDESK_GET_NEW_TICKET_WEBHOOK_URLS = _webhooks
'''

URLS = '''
from django.conf import settings
from django.urls import include, path, re_path
from django.views.static import serve

urlpatterns = [
    path("", include("helpdesk.urls")),
    re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}),
]
'''

SETUP = f'''
import django
django.setup()
from django.contrib.auth import get_user_model
from helpdesk.models import Queue
User = get_user_model()
User.objects.create_superuser("{SERVICE[0]}", "portal@example.test", "{SERVICE[1]}")
User.objects.create_user("{AGENT[0]}", "agent@example.test", "{AGENT[1]}", is_staff=True,
                         is_superuser=True, first_name="Ada", last_name="Agent")
queue = Queue.objects.create(title="Customer portal", slug="portal", allow_public_submission=False)
print(queue.id)
'''


def helpdesk_python() -> Path:
    """The interpreter of the cached environment with django-helpdesk, made on first use."""
    python = VENV / "bin" / "python"
    marker = VENV / ".installed"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".django-helpdesk.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists() or marker.read_text() != " ".join(VERSIONS):
            shutil.rmtree(VENV, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q",
                            "--disable-pip-version-check", *VERSIONS], check=True)
            marker.write_text(" ".join(VERSIONS))
    return python


def _template(python: Path) -> tuple[Path, int]:
    """A migrated project with its accounts and queue, made once per cache: each instance
    starts from a copy."""
    template = CACHE / "django-helpdesk-project"
    queue_file = template / "queue-id"
    with open(CACHE / ".django-helpdesk.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not queue_file.exists() or (template / "helpdesk_settings.py").read_text() \
                != SETTINGS:
            shutil.rmtree(template, ignore_errors=True)
            template.mkdir(parents=True)
            (template / "helpdesk_settings.py").write_text(SETTINGS)
            (template / "helpdesk_urls.py").write_text(URLS)
            env = _env(template)
            subprocess.run([str(python), "-m", "django", "migrate", "-v", "0"], env=env,
                           cwd=template, check=True)
            made = subprocess.run([str(python), "-c", SETUP], env=env, cwd=template,
                                  check=True, capture_output=True, text=True)
            queue_file.write_text(made.stdout.strip().splitlines()[-1])
    return template, int(queue_file.read_text())


def _env(project: Path) -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "helpdesk_settings",
            "PYTHONPATH": str(project), "PYTHONDONTWRITEBYTECODE": "1"}


def _basic(user: tuple[str, str]) -> str:
    return "Basic " + b64encode(f"{user[0]}:{user[1]}".encode()).decode()


@dataclass
class DjangoHelpdeskServer:
    """One running django-helpdesk; `stop()` and `start()` again on the same port."""

    project: Path
    python: Path
    queue: int
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def api(self) -> str:
        return self.url + "api/"

    def portal_env(self, webhook_secret: str = "") -> dict[str, str]:
        """The portal's settings for this helpdesk."""
        return {"PORTAL_SUPPORT__HELPDESK": "django_helpdesk",
                "PORTAL_SUPPORT__DJANGO_HELPDESK__URL": self.api,
                "PORTAL_SUPPORT__DJANGO_HELPDESK__USERNAME": SERVICE[0],
                "PORTAL_SUPPORT__DJANGO_HELPDESK__PASSWORD": SERVICE[1],
                "PORTAL_SUPPORT__DJANGO_HELPDESK__QUEUE": str(self.queue),
                "PORTAL_SUPPORT__DJANGO_HELPDESK__TIMEOUT_SECONDS": "10",
                "PORTAL_SUPPORT__DJANGO_HELPDESK__WEBHOOK_SECRET": webhook_secret}

    def start(self) -> None:
        log = open(self.project / "server.log", "ab")
        self.process = subprocess.Popen(
            [str(self.python), "-m", "django", "runserver", f"127.0.0.1:{self.port}",
             "--noreload"], env=_env(self.project), cwd=self.project, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 60
        request = urllib.request.Request(self.api + "tickets/?page_size=1",
                                         headers={"Authorization": _basic(SERVICE)})
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("django-helpdesk did not start: "
                                   + (self.project / "server.log").read_text()[-2000:])
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("django-helpdesk did not answer within 60 s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def send_webhooks_to(self, url: str | None) -> None:
        path = self.project / "webhooks.txt"
        if url is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(url)

    # ---- what the agent does and sees, through the REST API

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        async with aiohttp.ClientSession(headers={"Authorization": _basic(AGENT)}) as session, \
                session.request(method, self.api + path, **kwargs) as response:
            assert response.status < 300, f"{method} {path}: {response.status} " \
                                          f"{await response.text()}"
            return await response.json(content_type=None)

    async def reply(self, ticket: str, text: str, *, public: bool = True,
                    new_status: int | None = None,
                    file: tuple[str, bytes] | None = None) -> dict[str, Any]:
        """A follow-up written by the agent, as its pages make one."""
        form = aiohttp.FormData()
        form.add_field("ticket", ticket)
        form.add_field("comment", text)
        form.add_field("public", "true" if public else "false")
        if new_status is not None:
            form.add_field("new_status", str(new_status))
        if file is not None:
            form.add_field("attachments", file[1], filename=file[0],
                           content_type="application/octet-stream")
        found: dict[str, Any] = await self.call("POST", "followups/", data=form)
        return found

    async def ticket(self, ticket: str) -> dict[str, Any]:
        found: dict[str, Any] = await self.call("GET", f"tickets/{ticket}/")
        return found

    async def tickets_with(self, text: str) -> list[dict[str, Any]]:
        """Every ticket whose description holds `text`."""
        found, page = [], 1
        while True:
            listed = await self.call("GET", "tickets/", params={"page_size": 100,
                                                                "page": page})
            found += [t for t in listed["results"] if text in (t["description"] or "")]
            if not listed["next"]:
                return found
            page += 1


@contextmanager
def running_django_helpdesk(workdir: Path) -> Iterator[DjangoHelpdeskServer]:
    """A fresh django-helpdesk of its own in `workdir`, stopped on exit."""
    python = helpdesk_python()
    template, queue = _template(python)
    shutil.copytree(template, workdir, dirs_exist_ok=True)
    server = DjangoHelpdeskServer(project=workdir, python=python, queue=queue)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def until(check: Any, timeout: float = 20.0) -> Any:
    """Polls `check` (an async callable) until it returns something true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if found := await check():
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {timeout} s: {check}")
        await asyncio.sleep(0.1)
