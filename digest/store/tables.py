"""The database schema as SQLAlchemy Core tables (migrations live in ``migrations/``)."""

from __future__ import annotations

import sqlalchemy as sa

from digest.store.schema_base import UTCDateTime as UTCDateTime
from digest.store.schema_base import metadata as metadata

# The checks' and operations' tables, kept in a module of their own on the same metadata.
from digest.store.tables_ops import backups as backups
from digest.store.tables_ops import check_overrides as check_overrides
from digest.store.tables_ops import edition_checks as edition_checks
from digest.store.tables_ops import heartbeats as heartbeats
from digest.store.tables_ops import link_checks as link_checks

items = sa.Table(
    "items",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("section", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("title_key", sa.String(300), nullable=False, index=True),
    sa.Column("url", sa.Text, nullable=True),
    sa.Column("url_key", sa.String(500), nullable=True, index=True),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("body_html", sa.Text, nullable=False),
    sa.Column("author", sa.Text, nullable=False),
    # The outlet a reprinted story first ran in (RSS <source>, Atom source title).
    sa.Column("outlet", sa.Text, nullable=False, server_default=""),
    sa.Column("pinned", sa.Boolean, nullable=False),
    sa.Column("published", UTCDateTime, nullable=False, index=True),
    sa.Column("first_seen", UTCDateTime, nullable=False, index=True),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("source", sa.String(200), nullable=False, index=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("start", UTCDateTime, nullable=False, index=True),
    sa.Column("end", UTCDateTime, nullable=True),
    sa.Column("all_day", sa.Boolean, nullable=False),
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("description_full", sa.Text, nullable=False, server_default=""),
    sa.Column("collected_at", UTCDateTime, nullable=False),
)

fetch_state = sa.Table(
    "fetch_state",
    metadata,
    sa.Column("source_key", sa.String(200), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("etag", sa.Text, nullable=True),
    sa.Column("last_modified", sa.Text, nullable=True),
    sa.Column("last_checked", UTCDateTime, nullable=True),
    sa.Column("last_ok", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
)

editions = sa.Table(
    "editions",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("since", UTCDateTime, nullable=False),
    sa.Column("cutoff", UTCDateTime, nullable=False),
    sa.Column("built_at", UTCDateTime, nullable=False),
    sa.Column("item_count", sa.Integer, nullable=False),
    sa.Column("edition_json", sa.Text, nullable=False),
    sa.Column("html", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("state", sa.String(30), nullable=False, server_default="built"),
    sa.Column("kind", sa.String(20), nullable=False, server_default="weekly"),
    sa.Column("list_slug", sa.String(100), nullable=True),
    sa.Column("send_at", UTCDateTime, nullable=True),
)

edition_events = sa.Table(
    "edition_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("edition_id", sa.String(40), nullable=False, index=True),
    sa.Column("state", sa.String(30), nullable=False),
    sa.Column("who", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
)

job_locks = sa.Table(
    "job_locks",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("until", UTCDateTime, nullable=False),
)

edition_files = sa.Table(
    "edition_files",
    metadata,
    sa.Column("edition_id", sa.String(40), sa.ForeignKey("editions.id"), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("email_key", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("confirmed", UTCDateTime, nullable=True),
    sa.Column("unsubscribed", UTCDateTime, nullable=True),
    sa.Column("timezone", sa.String(64), nullable=True),  # IANA name; NULL: the organisation's
)

lists = sa.Table(
    "lists",
    metadata,
    sa.Column("slug", sa.String(100), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), primary_key=True),
    # no foreign key (migration 0020): store.audience.add_memberships checks the list
    sa.Column("list_slug", sa.String(100), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("format", sa.String(10), nullable=False),
    sa.Column("profile", sa.String(100), nullable=True),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("changed", UTCDateTime, nullable=True),
    sa.Column("sections", sa.Text, nullable=True),  # the reader's chosen sections; NULL: all
)

# One sign-up from the web form: the lists its confirmation email confirms (and nothing
# else), and that email's place in the queue the running server sends from.
signup_requests = sa.Table(
    "signup_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=False, index=True
    ),
    sa.Column("lists", sa.Text, nullable=False),  # slugs, space-separated
    sa.Column("format", sa.String(10), nullable=False),
    sa.Column("profile", sa.String(100), nullable=True),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("sent", UTCDateTime, nullable=True, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_try", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("confirmed", UTCDateTime, nullable=True),
)

suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("email_key", sa.String(320), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("reason", sa.String(20), nullable=False),
    sa.Column("origin", sa.Text, nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
)

batches = sa.Table(
    "batches",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("edition_id", sa.String(40), sa.ForeignKey("editions.id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("variant", sa.String(100), nullable=False),
    sa.Column("transport", sa.String(20), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("not_before", UTCDateTime, nullable=True),
    sa.Column("claimed_by", sa.Text, nullable=True),
    sa.Column("claimed_at", UTCDateTime, nullable=True),
    sa.Column("message_id", sa.Text, nullable=True),
    sa.Column("accepted_at", UTCDateTime, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    # When its mail is delivered (NULL: at once) and the timezone whose morning it is
    # ([schedule] deliver_at_local): a batch holds one zone.
    sa.Column("deliver_at", UTCDateTime, nullable=True),
    sa.Column("zone", sa.String(64), nullable=True),
    sa.UniqueConstraint("edition_id", "seq", name="uq_batches_edition_seq"),
    sa.Index("ix_batches_edition_state_seq", "edition_id", "state", "seq"),  # the claim order
)

# An edition's scheduled deliveries at the provider (SendGrid's batch_id from
# POST /v3/mail/batch), so the not-yet-delivered part can be cancelled.
scheduled_sends = sa.Table(
    "scheduled_sends",
    metadata,
    sa.Column("edition_id", sa.String(40), sa.ForeignKey("editions.id"), primary_key=True),
    sa.Column("transport", sa.String(20), nullable=False),
    sa.Column("batch_id", sa.String(100), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # scheduled | cancelled
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
)

# While a plan is written (one transaction): each group of newcomers, by what decides
# their batch, with the bucket (variant and zone) it joins and that bucket's first batch.
plan_groups = sa.Table(
    "plan_groups",
    metadata,
    sa.Column("edition_id", sa.String(40), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("bucket", sa.Integer, nullable=False),
    sa.Column("first_seq", sa.Integer, nullable=False),
)

# No foreign keys (migration 0019: their per-row checks were most of a plan's time):
# planning alone writes these rows, from ids it joins in the same transaction; editions
# and batches are never deleted, nor a subscriber these rows name.
send_recipients = sa.Table(
    "send_recipients",
    metadata,
    sa.Column("edition_id", sa.String(40), primary_key=True),
    sa.Column("subscriber_id", sa.Integer, primary_key=True),
    sa.Column("batch_id", sa.Integer, nullable=False, index=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("format", sa.String(10), nullable=False),
    sa.Column("list_slug", sa.String(100), nullable=False),
)

delivery_events = sa.Table(
    "delivery_events",
    metadata,
    sa.Column("sg_event_id", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("edition_id", sa.String(40), nullable=True, index=True),
    sa.Column("batch", sa.String(20), nullable=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("received", UTCDateTime, nullable=False),
    sa.Column("raw", sa.Text, nullable=False),
)

staff_users = sa.Table(
    "staff_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", UTCDateTime, nullable=True),
    sa.Column("last_login", UTCDateTime, nullable=True),
)

staff_sessions = sa.Table(
    "staff_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("staff_users.id"), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("expires", UTCDateTime, nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("who", sa.String(320), nullable=False),
    sa.Column("action", sa.String(60), nullable=False),
    sa.Column("target", sa.String(320), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)

# Staff's choices for one edition before it goes: per item (left out, its place in its
# section, pinned, its title and summary in this edition only) and, with item_key "", for
# the edition itself (title is its subject, summary its preheader).
edition_choices = sa.Table(
    "edition_choices",
    metadata,
    sa.Column("edition_id", sa.String(40), primary_key=True),
    sa.Column("item_key", sa.String(200), primary_key=True),
    sa.Column("left_out", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("position", sa.Integer, nullable=True),
    sa.Column("pinned", sa.Boolean, nullable=True),
    sa.Column("title", sa.Text, nullable=True),
    sa.Column("summary", sa.Text, nullable=True),
    sa.Column("changed_by", sa.String(320), nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
)

# Notes written in the console (the notes folder's files are the other kind).
staff_notes = sa.Table(
    "staff_notes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("section", sa.String(100), nullable=False),
    sa.Column("pinned", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("editor_note", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("published", UTCDateTime, nullable=False),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(320), nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
)

# Where a print member's paper copy is posted: a person inside a facility. One per
# subscriber; every field but unit and address2 is needed before anything is mailed.
mailing_addresses = sa.Table(
    "mailing_addresses",
    metadata,
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), primary_key=True),
    sa.Column("inmate_id", sa.String(60), nullable=False, server_default=""),
    sa.Column("facility", sa.Text, nullable=False, server_default=""),
    sa.Column("unit", sa.Text, nullable=False, server_default=""),
    sa.Column("address1", sa.Text, nullable=False, server_default=""),
    sa.Column("address2", sa.Text, nullable=False, server_default=""),
    sa.Column("city", sa.Text, nullable=False, server_default=""),
    sa.Column("state", sa.String(60), nullable=False, server_default=""),
    sa.Column("zip", sa.String(20), nullable=False, server_default=""),
    sa.Column("changed", UTCDateTime, nullable=False),
)
