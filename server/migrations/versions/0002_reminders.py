"""Reminders scheduled in the database; mail knows its kind and participant.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reminder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["participant_id"], ["participant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reminder_status_due", "reminder", ["status", "due_at"])
    op.create_index("ix_reminder_participant", "reminder", ["participant_id"])
    # batch: SQLite adds a foreign key only by copying the table
    with op.batch_alter_table("mail") as batch:
        # the server default fills existing rows, then goes: the models set the value
        batch.add_column(sa.Column("kind", sa.String(length=32), nullable=False, server_default=""))
        batch.add_column(sa.Column("participant_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_mail_participant", "participant", ["participant_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_mail_status_next_attempt", ["status", "next_attempt_at"])
    with op.batch_alter_table("mail") as batch:
        batch.alter_column("kind", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("mail") as batch:
        batch.drop_index("ix_mail_status_next_attempt")
        batch.drop_constraint("fk_mail_participant", type_="foreignkey")
        batch.drop_column("participant_id")
        batch.drop_column("kind")
    op.drop_index("ix_reminder_participant", table_name="reminder")
    op.drop_index("ix_reminder_status_due", table_name="reminder")
    op.drop_table("reminder")
