"""Initial schema: portals, viewer renewals, rate-limit buckets.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portals",
        sa.Column("member_id", sa.String(64), primary_key=True),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("client_endpoint", sa.String(512), nullable=False),
        sa.Column("server_endpoint", sa.String(512), nullable=False, server_default=""),
        sa.Column("scope", sa.String(512), nullable=False, server_default=""),
        sa.Column("license_status", sa.String(8), nullable=False, server_default=""),
        sa.Column("status", sa.String(32), nullable=False, server_default="active"),
        sa.Column("language", sa.String(8), nullable=False, server_default=""),
        sa.Column("application_token", sa.Text, nullable=True),
        sa.Column("installed_by", sa.Integer, nullable=True),
        sa.Column("access_token", sa.Text, nullable=True),
        sa.Column("refresh_token", sa.Text, nullable=True),
        sa.Column("expires_at", sa.Float, nullable=True),
        sa.Column("token_version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("placement_bound", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("events_bound", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("last_error", sa.String(255), nullable=True),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "viewer_renewals",
        sa.Column("refresh_hash", sa.String(64), primary_key=True),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("access_token", sa.Text, nullable=True),
        sa.Column("refresh_token", sa.Text, nullable=True),
        sa.Column("expires_at", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_viewer_renewals_created_at", "viewer_renewals", ["created_at"])
    # ratelimit.rate_bucket_table: GCRA theoretical arrival time per portal, microseconds.
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("tat_us", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "oauth_states",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("oauth_states")
    op.drop_table("rate_buckets")
    op.drop_index("ix_viewer_renewals_created_at", "viewer_renewals")
    op.drop_table("viewer_renewals")
    op.drop_table("portals")
