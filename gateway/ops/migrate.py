"""Schema migrations: the plain SQL files of `sql/`, applied by yoyo-migrations
(a maintained tool: ordering, locking, a record of what was applied)."""

from __future__ import annotations

from pathlib import Path

from yoyo import get_backend, read_migrations

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def yoyo_url(database_url: str) -> str:
    scheme, rest = database_url.split("://", 1)
    if scheme in ("postgres", "postgresql"):
        scheme = "postgresql+psycopg"
    return f"{scheme}://{rest}"


def migrate(database_url: str) -> list[str]:
    """Apply pending migrations; returns the ids applied (none when up to date)."""
    backend = get_backend(yoyo_url(database_url))
    try:
        migrations = read_migrations(str(SQL_DIR))
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        return [migration.id for migration in pending]
    finally:
        backend.connection.close()
