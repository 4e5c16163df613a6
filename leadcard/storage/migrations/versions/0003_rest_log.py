"""REST log: one row per HTTP attempt to Bitrix24, bodies encrypted (Market requirement).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rest_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("called_at", sa.Float, nullable=False),
        sa.Column("member_id", sa.String(64), nullable=True),
        sa.Column("service", sa.String(8), nullable=False),
        sa.Column("method", sa.String(128), nullable=False),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("error_code", sa.String(64), nullable=False, server_default=""),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("response", sa.Text, nullable=False),
    )
    op.create_index("ix_rest_log_called_at", "rest_log", ["called_at"])
    op.create_index("ix_rest_log_member_called", "rest_log", ["member_id", "called_at"])


def downgrade() -> None:
    op.drop_index("ix_rest_log_member_called", table_name="rest_log")
    op.drop_index("ix_rest_log_called_at", table_name="rest_log")
    op.drop_table("rest_log")
