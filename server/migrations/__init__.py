"""Alembic migrations of the Madoguchi database; run them through server.db.migrate."""
