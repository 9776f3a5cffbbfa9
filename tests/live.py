"""A real `portal serve` process on a free loopback port, for browser and schema tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from tests.conftest import TEST_ENV

PORTAL = str(Path(sys.executable).with_name("portal"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LivePortal:
    url: str
    env: dict[str, str]
    log: Path
    # The `portal serve` process (None: not one the test started).
    process: subprocess.Popen[bytes] | None = None

    def run(self, *args: str) -> str:
        """Run another `portal` command against the same data; its standard output."""
        done = subprocess.run([PORTAL, *args], env=self.env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def restart(self) -> None:
        """Stop the process (SIGTERM; it must end cleanly) and serve again on the same port."""
        assert self.process is not None
        stopped, self.process = self.process, None
        stop_serving(self, stopped)
        self.process = start_serving(self)


@contextmanager
def live_portal(data_dir: Path, *, demo: bool = True, env: dict[str, str] | None = None,
                **more: str) -> Iterator[LivePortal]:
    env = {**(env or {}), **more}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    environ.update(TEST_ENV, PORTAL_DATA_DIR=str(data_dir), PORTAL_BASE_URL=url, **env)
    # Several portals may share one data folder (and database): a log each.
    portal = LivePortal(url, environ, data_dir / f"serve-{port}.log")
    data_dir.mkdir(parents=True, exist_ok=True)
    if demo:
        portal.run("demo", "--force")
    portal.log.write_text("")
    running = replace(portal, process=start_serving(portal))
    try:
        yield running
    finally:
        if running.process is not None:  # None: a restart failed, and left nothing running
            stop_serving(running, running.process)


def start_serving(portal: LivePortal) -> subprocess.Popen[bytes]:
    """`portal serve` on the portal's port (again, after a stop), once it answers."""
    port = portal.url.rsplit(":", 1)[1]
    with portal.log.open("a") as log:
        process = subprocess.Popen([PORTAL, "serve", "--host", "127.0.0.1", "--port", port],
                                   env=portal.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_healthy(portal.url, process, portal.log)
    except BaseException:
        process.kill()  # it never answered: nothing to stop gracefully, nothing left behind
        process.wait()
        raise
    return process


def terminate(process: subprocess.Popen[bytes], seconds: float) -> bool:
    """SIGTERM, then SIGKILL if it has not ended within `seconds`; whether it ended itself."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False
    return True


def stop_serving(portal: LivePortal, process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and the process must end cleanly within 20 s, its log free of tracebacks."""
    if not terminate(process, 20):
        raise AssertionError("the portal did not stop within 20 s of SIGTERM")
    log_text = portal.log.read_text(errors="replace")
    assert process.returncode == 0, f"the portal exited with {process.returncode}:\n{log_text}"
    assert "Traceback" not in log_text and "unhandled error" not in log_text, log_text


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the portal exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"the portal did not answer within 30 s:\n{log.read_text()}")


class RedisServer:
    """A Redis of a test's own on a free loopback port, to kill and start again."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._command = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
                         "--save", "", "--appendonly", "no", "--dir", str(folder)]
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(self._command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start within 10 s")

    @property
    def running(self) -> bool:
        return self._process is not None

    def kill(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)  # a frozen one would not die at once
            self._process.kill()
            self._process.wait()
            self._process = None

    def freeze(self) -> None:
        """Stop it answering, its sockets open (SIGSTOP): what a hung Redis looks like."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)


@contextmanager
def redis_server(folder: Path) -> Iterator[RedisServer]:
    server = RedisServer(folder)
    server.start()
    try:
        yield server
    finally:
        server.kill()
