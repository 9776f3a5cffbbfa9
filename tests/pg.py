"""Throwaway PostgreSQL databases on the server at 127.0.0.1:5432."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@contextmanager
def temporary_database(prefix: str, admin_dsn: str = ADMIN_DSN) -> Iterator[str]:
    """A new, empty database; its DSN; dropped afterwards, connections and all."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(admin_dsn)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        yield admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
