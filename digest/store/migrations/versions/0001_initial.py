"""The first schema: items, events, fetch state, editions, a minimal audience.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "items",
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
        sa.Column("pinned", sa.Boolean, nullable=False),
        sa.Column("published", sa.DateTime, nullable=False, index=True),
        sa.Column("first_seen", sa.DateTime, nullable=False, index=True),
    )
    op.create_table(
        "events",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("source", sa.String(200), nullable=False, index=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("start", sa.DateTime, nullable=False, index=True),
        sa.Column("end", sa.DateTime, nullable=True),
        sa.Column("all_day", sa.Boolean, nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("collected_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "fetch_state",
        sa.Column("source_key", sa.String(200), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("etag", sa.Text, nullable=True),
        sa.Column("last_modified", sa.Text, nullable=True),
        sa.Column("last_checked", sa.DateTime, nullable=True),
        sa.Column("last_ok", sa.DateTime, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_table(
        "editions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("since", sa.DateTime, nullable=False),
        sa.Column("cutoff", sa.DateTime, nullable=False),
        sa.Column("built_at", sa.DateTime, nullable=False),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.Column("edition_json", sa.Text, nullable=False),
        sa.Column("html", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
    )
    op.create_table(
        "lists",
        sa.Column("slug", sa.String(100), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
    )
    op.create_table(
        "memberships",
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), primary_key=True),
        sa.Column("list_slug", sa.String(100), sa.ForeignKey("lists.slug"), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("edition_id", sa.String(40), sa.ForeignKey("editions.id"), primary_key=True),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), primary_key=True),
        sa.Column("transport", sa.String(20), nullable=False),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("delivered_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    for name in (
        "deliveries",
        "memberships",
        "lists",
        "subscribers",
        "editions",
        "fetch_state",
        "events",
        "items",
    ):
        op.drop_table(name)
