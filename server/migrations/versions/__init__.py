"""Migration scripts, one per revision, applied in order by alembic."""
