"""The portal store's three tables, as the Alembic history left them, and a portal's statuses.

These declarations mirror `migrations/versions/` (0001) for SQLAlchemy Core's statements;
they never create or change the schema (only a new migration does, and then this file follows
it — `tests/unit/test_portal_store.py` compares the two). Secrets in these tables are always
key-ring ciphertext, never clear text.

``portals``          one row per Bitrix24 portal, keyed by `member_id` (stable when the portal
                     changes its domain); its tokens and `token_version` (`portals.py`,
                     `refresh.py`)
``viewer_renewals``  renewals of a viewer's expired AUTH_ID, keyed by a keyed hash of the spent
                     refresh token (`viewer_renewals.py`)
``oauth_states``     one-time `state` values of the reconnect flow, stored hashed
                     (`oauth_states.py`)
"""

from __future__ import annotations

import sqlalchemy as sa

from leadcard.storage.db import metadata

# `portals.status`
ACTIVE = "active"
REAUTH_REQUIRED = "reauth_required"
PAYMENT_REQUIRED = "payment_required"
UNINSTALLED = "uninstalled"

portals = sa.Table(
    "portals",
    metadata,
    sa.Column("member_id", sa.String(64), primary_key=True),
    sa.Column("domain", sa.String(255), nullable=False),
    sa.Column("client_endpoint", sa.String(512), nullable=False),
    sa.Column("server_endpoint", sa.String(512), nullable=False, server_default=""),
    sa.Column("scope", sa.String(512), nullable=False, server_default=""),
    sa.Column("license_status", sa.String(8), nullable=False, server_default=""),
    sa.Column("status", sa.String(32), nullable=False, server_default=ACTIVE),
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

viewer_renewals = sa.Table(
    "viewer_renewals",
    metadata,
    sa.Column("refresh_hash", sa.String(64), primary_key=True),
    sa.Column("member_id", sa.String(64), nullable=False),
    sa.Column("access_token", sa.Text, nullable=True),
    sa.Column("refresh_token", sa.Text, nullable=True),
    sa.Column("expires_at", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_viewer_renewals_created_at", "created_at"),
)

oauth_states = sa.Table(
    "oauth_states",
    metadata,
    sa.Column("state_hash", sa.String(64), primary_key=True),
    sa.Column("member_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
