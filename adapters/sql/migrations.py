"""Versioned, forward-only schema migrations shared by the SQL adapters.

Files are `migrations/NNNN_name.sql`; each applied version is a row in `schema_migrations`.
Where one database needs its own statements, `NNNN_name.<dialect>.sql` stands in for the
portable file on that database (an index only PostgreSQL can use, say).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from adapters.sql.session import SqlSession

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_FILE = re.compile(r"^(\d{4})_(\w+?)(?:\.(sqlite|postgres))?\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


def split_statements(text: str) -> tuple[str, ...]:
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return tuple(s.strip() for s in re.split(r";\s*$", "\n".join(lines), flags=re.M) if s.strip())


def load_migrations(dialect: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    portable: dict[int, Path] = {}
    variants: dict[int, Path] = {}
    names: dict[int, str] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise ValueError(f"migration file {path.name} is not named NNNN_name[.dialect].sql")
        version = int(match[1])
        if names.setdefault(version, match[2]) != match[2]:
            raise ValueError(f"two migrations share the version {version:04d}")
        if match[3] is None:
            portable[version] = path
        elif match[3] == dialect:
            variants[version] = path
    return [Migration(version, names[version], split_statements(
                (variants.get(version) or portable[version]).read_text(encoding="utf-8")))
            for version in sorted(names) if version in portable or version in variants]


async def applied_versions(db: SqlSession) -> set[int]:
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)")
    return {int(row["version"]) for row in await db.fetch_all(
        "SELECT version FROM schema_migrations")}


async def pending(db: SqlSession) -> list[Migration]:
    done = await applied_versions(db)
    return [m for m in load_migrations(db.dialect) if m.version not in done]


async def apply_pending(db: SqlSession, at: datetime) -> list[str]:
    """Run inside one transaction that the caller holds (and on PostgreSQL, locks)."""
    applied = []
    for migration in await pending(db):
        for statement in migration.statements:
            await db.execute(statement)
        await db.execute(
            "INSERT INTO schema_migrations (version, name, applied_at)"
            " VALUES (:version, :name, :at)",
            {"version": migration.version, "name": migration.name, "at": at})
        applied.append(migration.label)
    return applied
