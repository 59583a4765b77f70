"""Engine and session factory for the configured database URL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# A SQLite file's connections, at most: aiosqlite gives each its own thread, and the thread
# its own malloc arena and page cache, which stay when the connection closes (≈ 0.2 MB each,
# measured in the server's memory map). SQLAlchemy's default (5 + 10 overflow) let a burst of
# joins open 15; SQLite writes one at a time anyway, and WAL lets readers run beside the writer.
SQLITE_POOL_SIZE, SQLITE_MAX_OVERFLOW = 2, 2


def make_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets foreign keys and WAL so readers don't block the writer."""
    parsed = make_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    options: dict[str, Any] = {"pool_pre_ping": not sqlite}
    if sqlite and parsed.database not in (None, "", ":memory:"):
        options |= {"pool_size": SQLITE_POOL_SIZE, "max_overflow": SQLITE_MAX_OVERFLOW}
    engine = create_async_engine(url, **options)
    if sqlite:

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
