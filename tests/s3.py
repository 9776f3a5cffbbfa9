"""A real S3-compatible HTTP server for tests: moto's server mode on a free loopback port."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer

from tests.live import free_port

CREDENTIALS = {"access_key_id": "test-key", "secret_access_key": "test-secret"}


@contextmanager
def moto_server() -> Iterator[str]:
    """Its endpoint URL while it runs."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
