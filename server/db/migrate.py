"""Schema migrations, run programmatically: ``madoguchi db upgrade`` calls :func:`upgrade`."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from server.db.engine import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    """An alembic Config built in code (no alembic.ini) for the database at ``url``."""
    config = Config()
    # ConfigParser interpolates '%': escape it in the path
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    # the URL goes in attributes, not in an option, so passwords with '%' survive
    config.attributes["url"] = url
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision``; safe to call inside a running loop."""
    # env.py runs its own event loop, which must not be this thread's running one
    await asyncio.to_thread(command.upgrade, alembic_config(url), revision)


async def downgrade(url: str, revision: str) -> None:
    """Take the database at ``url`` down to ``revision`` (``"base"`` empties it)."""
    await asyncio.to_thread(command.downgrade, alembic_config(url), revision)


def head_revision() -> str:
    """The newest revision shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert head is not None, "no migrations found"
    return head


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at; None when it was never migrated."""
    # a thread of its own, so this works whether or not the caller has a running loop
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _current_revision(url)).result()


async def _current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_revision_of)
    finally:
        await engine.dispose()


def _revision_of(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
