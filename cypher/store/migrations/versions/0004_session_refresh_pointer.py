"""Each session names its one current refresh token; the table of every refresh token ever issued goes.

Rotation becomes one compare-and-set on the session row, and an authentic refresh token of the
session that is not its current one is a spent one (reuse). Until now refresh_tokens kept a row for
every rotation, spent ones included, for as long as the session lived.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sessions", sa.Column("refresh_token_id", sa.String(64), nullable=True))
    # A session has at most one unspent refresh token (login and rotation each leave exactly one);
    # a session left without one accepts no refresh token, as before.
    op.execute(
        """
        UPDATE sessions SET refresh_token_id = (
            SELECT refresh_tokens.id FROM refresh_tokens
            WHERE refresh_tokens.session_id = sessions.id AND refresh_tokens.spent_at IS NULL
            ORDER BY refresh_tokens.issued_at DESC LIMIT 1
        )
        """
    )
    op.drop_index("ix_refresh_tokens_session_id", table_name="refresh_tokens")
    op.drop_table("refresh_tokens")


def downgrade() -> None:
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("session_id", sa.String(64), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("spent_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_refresh_tokens_session_id", "refresh_tokens", ["session_id"])
    # The current tokens carry over unspent; when each was issued is not kept, so the session's
    # last use stands in (nothing reads issued_at but the ordering above).
    op.execute(
        """
        INSERT INTO refresh_tokens (id, session_id, issued_at, expires_at)
        SELECT refresh_token_id, id, last_seen_at, expires_at FROM sessions WHERE refresh_token_id IS NOT NULL
        """
    )
    # Not batch mode: on SQLite that copies sessions and drops the original, and the drop, foreign
    # keys being on, would cascade to the refresh_tokens rows just written. SQLite (3.35 and later)
    # and PostgreSQL both drop a column in place.
    op.execute("ALTER TABLE sessions DROP COLUMN refresh_token_id")
