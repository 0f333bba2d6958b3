"""TOTP secrets and recovery codes, pass-auth attempts, sessions with rotating refresh tokens.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as users:
        users.add_column(sa.Column("totp_secret", sa.LargeBinary(), nullable=True))
        users.add_column(sa.Column("totp_secret_key_id", sa.String(32), nullable=True))
        users.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
        users.add_column(sa.Column("totp_failures", sa.Integer(), nullable=False, server_default="0"))
        users.add_column(sa.Column("totp_locked_until", sa.DateTime(), nullable=True))
        users.add_column(sa.Column("password_changed_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("registration_states") as states:
        states.add_column(sa.Column("purpose", sa.String(16), nullable=False, server_default="register"))
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("user_id", "code_hash", name="uq_recovery_codes_user_hash"),
    )
    op.create_table(
        "pass_auth_uses",
        sa.Column("token_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("spent_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(512), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("session_id", sa.String(64), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("spent_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_refresh_tokens_session_id", "refresh_tokens", ["session_id"])


def downgrade() -> None:
    op.drop_table("refresh_tokens")
    op.drop_table("sessions")
    op.drop_table("pass_auth_uses")
    op.drop_table("recovery_codes")
    with op.batch_alter_table("registration_states") as states:
        states.drop_column("purpose")
    with op.batch_alter_table("users") as users:
        users.drop_column("password_changed_at")
        users.drop_column("totp_locked_until")
        users.drop_column("totp_failures")
        users.drop_column("totp_last_step")
        users.drop_column("totp_secret_key_id")
        users.drop_column("totp_secret")
