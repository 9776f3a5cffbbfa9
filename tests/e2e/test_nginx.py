"""nginx (Debian's package) in front of two portal processes on PostgreSQL and Redis, with
deploy/nginx/nginx.conf itself: sign-in, live streams that pass at once, a 1 GiB download
with Range, the client address from X-Forwarded-For only through the trusted proxy, and
Secure cookies behind https."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import ssl
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.config import PROJECT_ROOT
from tests.api.test_notifications import read_events
from tests.e2e.test_cluster import ALICE, STAFF, announce, open_stream, sign_in
from tests.live import LivePortal, free_port, live_portal, redis_server
from tests.pg import temporary_database

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

CONFIG = PROJECT_ROOT / "deploy" / "nginx" / "nginx.conf"
# nginx connects to the portals from this address, the only one they trust.
PROXY_ADDRESS = "127.0.0.2"
BIG = 1 << 30


@dataclass
class Front:
    nginx: LivePortal  # only its url is used: https://127.0.0.1:<port>
    a: LivePortal
    b: LivePortal


def certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portal.example.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    crt, pem = folder / "portal.crt", folder / "portal.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


def nginx_config(folder: Path, upstreams: list[int], https_port: int) -> Path:
    """deploy/nginx/nginx.conf with the test's addresses, certificate and files."""
    text = CONFIG.read_text()
    servers = iter(upstreams)
    text, count = re.subn(r"server portal-\d:8080",
                          lambda _: f"server 127.0.0.1:{next(servers)}", text)
    assert count == 2
    crt, key = certificate(folder)
    text = text.replace("/etc/nginx/tls/portal.crt", str(crt))
    text = text.replace("/etc/nginx/tls/portal.key", str(key))
    text = text.replace("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
    text = text.replace("listen 80;", f"listen 127.0.0.1:{free_port()};")
    text = text.replace("    upstream portal {", f"    proxy_bind {PROXY_ADDRESS};\n"
                        "    access_log off;\n    upstream portal {", 1)
    text = "pid nginx.pid;\n" + text
    path = folder / "nginx.conf"
    path.write_text(text)
    return path


def cluster_env(dsn: str, redis_url: str, name: str) -> dict[str, str]:
    """Settings of portals that share PostgreSQL and Redis behind nginx (which they trust)."""
    return {
        "PORTAL_STORAGE__ADAPTER": "postgres", "PORTAL_STORAGE__DSN": dsn,
        "PORTAL_EVENT_BUS__ADAPTER": "redis", "PORTAL_EVENT_BUS__URL": redis_url,
        "PORTAL_EVENT_BUS__CHANNEL": f"{name}-{uuid.uuid4().hex}",
        "PORTAL_WEB__SECRET_KEY": f"{name}-test-secret", "PORTAL_WEB__PROXY_HOPS": "1",
        "PORTAL_WEB__TRUSTED_PROXIES": f"{PROXY_ADDRESS}/32"}


def port_of(portal: LivePortal) -> int:
    return int(portal.url.rsplit(":", 1)[1])


@contextmanager
def nginx(folder: Path, portals: list[LivePortal]) -> Iterator[LivePortal]:
    """nginx with deploy/'s configuration in front of the portals; its https address (in a
    LivePortal, of which only url and log are used)."""
    port = free_port()
    folder.mkdir(parents=True)
    config = nginx_config(folder, [port_of(portal) for portal in portals], port)
    with (folder / "nginx.log").open("w") as log:
        server = subprocess.Popen(
            ["nginx", "-p", str(folder), "-c", str(config), "-e", "stderr",
             "-g", "daemon off;"], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, server, folder / "nginx.log")
        yield LivePortal(f"https://127.0.0.1:{port}", {}, folder / "nginx.log")
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    data_dir = tmp_path_factory.mktemp("front")
    with temporary_database("portal_nginx") as dsn, redis_server(data_dir) as redis:
        shared = {**cluster_env(dsn, redis.url, "nginx"),
                  "PORTAL_LOGGING__FORMAT": "json", "PORTAL_LOGGING__ACCESS_LOG": "true"}
        with live_portal(data_dir, env=shared) as a, \
                live_portal(data_dir, demo=False, env=shared) as b, \
                nginx(data_dir / "nginx", [a, b]) as proxy:
            yield Front(proxy, a, b)


def wait_for_port(port: int, nginx: subprocess.Popen[bytes], log: Path) -> None:
    import socket

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert nginx.poll() is None, log.read_text()
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nginx did not listen: {log.read_text()}")


def tls_session(**options: Any) -> aiohttp.ClientSession:
    """A client for nginx's test certificate (made here, so not checked)."""
    insecure = ssl.create_default_context()
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=insecure, **options),
                                 timeout=aiohttp.ClientTimeout(total=120))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with tls_session() as session:
        yield session


async def test_sign_in_and_a_live_stream_pass_through_at_once(
        front: Front, http: aiohttp.ClientSession) -> None:
    staff = await sign_in(http, front.nginx, STAFF)
    alice = await sign_in(http, front.nginx, ALICE)
    stream, _ = await open_stream(http, front.nginx, alice)
    try:
        title = f"Through nginx {uuid.uuid4().hex[:6]}"
        started = time.monotonic()
        await announce(http, front.nginx, staff, title)
        events = await read_events(stream, 1, seconds=5)
        assert [json.loads(e.data)["title"] for e in events] == [title]
        assert time.monotonic() - started < 1.0  # not held back in a buffer
    finally:
        # Cut, not closed: a TLS close waits for nginx's goodbye, which a stream never says.
        if stream.connection is not None and stream.connection.transport is not None:
            stream.connection.transport.abort()
        stream.close()
    # The session cookies of a page reached over https are Secure (the proxy said https).
    async with http.get(f"{front.nginx.url}/login") as page:
        assert page.status == 200
        assert all("Secure" in cookie for cookie in page.headers.getall("Set-Cookie"))


async def test_the_client_address_comes_from_the_trusted_proxy_only(
        front: Front, http: aiohttp.ClientSession) -> None:
    alice = await sign_in(http, front.nginx, ALICE)
    through, direct = f"via-nginx-{uuid.uuid4().hex[:8]}", f"direct-{uuid.uuid4().hex[:8]}"
    spoof = {"X-Forwarded-For": "203.0.113.9"}
    async with http.get(f"{front.nginx.url}/api/v1/me",
                        headers={**alice, **spoof, "X-Request-ID": through}) as answer:
        assert answer.status == 200
        nginx_id = answer.headers["X-Request-ID"]
    async with http.get(f"{front.a.url}/api/v1/me",
                        headers={**alice, **spoof, "X-Request-ID": direct}) as answer:
        assert answer.status == 200
        direct_id = answer.headers["X-Request-ID"]
    await asyncio.sleep(0.2)
    lines = [json.loads(line) for portal in (front.a, front.b)
             for line in portal.log.read_text().splitlines() if line.startswith("{")]
    # Through nginx: nginx's own request id, and the address nginx saw (the spoofed entry
    # lies further left and is ignored), though the connection came from 127.0.0.2.
    [proxied] = [line for line in lines if line.get("request_id") == nginx_id]
    assert nginx_id != through and proxied["client"] == "127.0.0.1"
    # Straight to a portal, from an address it does not trust: neither header is believed.
    [straight] = [line for line in lines if line.get("request_id") == direct_id]
    assert direct_id != direct and straight["client"] == "127.0.0.1"


async def test_a_gibibyte_downloads_whole_and_by_range_through_nginx(
        front: Front, http: aiohttp.ClientSession) -> None:
    data_dir = Path(front.a.env["PORTAL_DATA_DIR"])
    folder = data_dir / "objects" / "releases" / "dbguard" / "9.9"
    folder.mkdir(parents=True)
    with (folder / "big.iso").open("wb") as big:  # sparse: no gigabyte on disk
        big.truncate(BIG)
        big.seek(BIG - 8)
        big.write(b"THE-END!")
    (folder / "release.yaml").write_text("kind: release\ntitle: DB Guard 9.9\n")
    assert "registered 9.9" in front.a.run("scan")
    alice = await sign_in(http, front.nginx, ALICE)
    async with http.get(f"{front.nginx.url}/api/v1/licenses", headers=alice) as answer:
        licenses = (await answer.json())["items"]
    license_id = next(item["id"] for item in licenses if item["product"]["code"] == "dbguard"
                      and item["status"] == "active")
    async with http.get(f"{front.nginx.url}/api/v1/licenses/{license_id}/images",
                        headers=alice) as answer:
        releases = (await answer.json())["releases"]
    [file_id] = [f["id"] for r in releases if r["version"] == "9.9" for f in r["files"]
                 if f["name"] == "big.iso"]
    url = f"{front.nginx.url}/api/v1/licenses/{license_id}/images/{file_id}"
    async with http.get(url, headers={**alice, "Range": f"bytes={BIG - 8}-"}) as part:
        assert part.status == 206, await part.text()
        assert part.headers["Content-Range"] == f"bytes {BIG - 8}-{BIG - 1}/{BIG}"
        assert await part.read() == b"THE-END!"
    received, tail = 0, b""
    async with http.get(url, headers=alice) as whole:
        assert whole.status == 200 and int(whole.headers["Content-Length"]) == BIG
        async for chunk in whole.content.iter_chunked(1 << 20):
            received += len(chunk)
            tail = (tail + chunk)[-8:]
    assert received == BIG and tail == b"THE-END!"
