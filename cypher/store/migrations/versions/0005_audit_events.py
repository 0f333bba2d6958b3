"""The audit log: one row per security event, kept for CYPHER_AUDIT_RETENTION_DAYS.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        # INTEGER on SQLite, where only an INTEGER PRIMARY KEY counts up by itself.
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("event", sa.String(48), nullable=False),
        # No foreign key: a deleted account's events stay.
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(64), nullable=True),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(512), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
    )
    op.create_index("ix_audit_events_user_id_occurred_at", "audit_events", ["user_id", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_user_id_occurred_at", table_name="audit_events")
    op.drop_table("audit_events")
