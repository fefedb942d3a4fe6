"""The schema's tables for the checks before a send and for operations (backups, the
scheduler's heartbeat), on the schema's one metadata."""

from __future__ import annotations

import sqlalchemy as sa

from digest.store.schema_base import UTCDateTime, metadata

# The checks before a send, per edition: each check's latest verdict on the content it
# saw (content_hash), with what it found as JSON.
edition_checks = sa.Table(
    "edition_checks",
    metadata,
    sa.Column("edition_id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("verdict", sa.String(20), nullable=False),  # ok, warn, block, skipped
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("checked_at", UTCDateTime, nullable=False),
)

# Staff's "send it anyway" for a blocked edition: who, why, and the content it was for.
check_overrides = sa.Table(
    "check_overrides",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("edition_id", sa.String(40), nullable=False, index=True),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("who", sa.String(320), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
)

# Each link checked in the last day (or link_cache_hours), so a re-check is quick.
link_checks = sa.Table(
    "link_checks",
    metadata,
    sa.Column("url", sa.Text, primary_key=True),
    sa.Column("outcome", sa.String(20), nullable=False),  # ok, redirected, broken, unreachable
    sa.Column("status", sa.Integer, nullable=True),
    sa.Column("final_url", sa.Text, nullable=False, server_default=""),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("checked_at", UTCDateTime, nullable=False),
)

# Each backup taken (by `digest backup` or the daily job): where, how large, and whether
# it worked; the console and /healthz show the latest.
backups = sa.Table(
    "backups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
)

# "I am alive" from long-running parts (the scheduler), for /healthz.
heartbeats = sa.Table(
    "heartbeats",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False),
)
