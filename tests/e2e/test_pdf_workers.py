"""A portal killed outright (SIGKILL: no shutdown runs) takes its PDF worker processes with
it: they end when their parent does, instead of living on (one was seen at 145 MB)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import TEST_ENV
from tests.live import PORTAL, free_port, wait_until_healthy


def children(pid: int) -> dict[int, str]:
    """Live (not zombie) processes whose parent is `pid`, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if int(ppid) == pid and state != "Z":
            found[int(entry.name)] = command
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_pdf_workers_end_with_a_killed_portal(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(TEST_ENV, PORTAL_DATA_DIR=str(tmp_path / "var"), PORTAL_PDF__WARM_ON_START="true",
               PORTAL_PDF__WORKERS="2", PORTAL_BASE_URL=f"http://127.0.0.1:{port}")
    log = tmp_path / "serve.log"
    helpers: set[int] = set()
    with log.open("w") as output:
        portal = subprocess.Popen([PORTAL, "serve", "--host", "127.0.0.1", "--port", str(port)],
                                  env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", portal, log)
        deadline = time.monotonic() + 30
        while len(workers := {pid: command for pid, command in children(portal.pid).items()
                              if "spawn_main" in command}) < 1:
            assert time.monotonic() < deadline, f"no warm workers: {children(portal.pid)}"
            time.sleep(0.1)
        helpers = set(children(portal.pid))
        portal.kill()
        portal.wait()
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in helpers):
            assert time.monotonic() < deadline, {pid: workers.get(pid) for pid in helpers
                                                 if alive(pid)}
            time.sleep(0.1)
    finally:
        if portal.poll() is None:
            portal.kill()
        for pid in {*children(portal.pid), *helpers}:
            if alive(pid):  # left behind by a failing run: not by the next one
                os.kill(pid, signal.SIGKILL)
