"""The send ledger: batches with their states and the recipient snapshot.

The minimal `deliveries` table of the first slice becomes one accepted batch per
edition, so nobody already sent an edition is sent it again after the upgrade.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("edition_id", sa.String(40), sa.ForeignKey("editions.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("variant", sa.String(100), nullable=False),
        sa.Column("transport", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("not_before", sa.DateTime, nullable=True),
        sa.Column("claimed_by", sa.Text, nullable=True),
        sa.Column("claimed_at", sa.DateTime, nullable=True),
        sa.Column("message_id", sa.Text, nullable=True),
        sa.Column("accepted_at", sa.DateTime, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("updated", sa.DateTime, nullable=False),
        sa.UniqueConstraint("edition_id", "seq", name="uq_batches_edition_seq"),
    )
    op.create_index("ix_batches_edition_state", "batches", ["edition_id", "state"])
    op.create_table(
        "send_recipients",
        sa.Column("edition_id", sa.String(40), sa.ForeignKey("editions.id"), primary_key=True),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), primary_key=True),
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("list_slug", sa.String(100), nullable=False),
    )
    op.create_index("ix_send_recipients_batch_id", "send_recipients", ["batch_id"])
    op.execute(
        "INSERT INTO batches (edition_id, seq, variant, transport, state, attempts, "
        "message_id, accepted_at, created, updated) "
        "SELECT edition_id, 1, 'html', 'outbox', 'accepted', 1, 'outbox', MAX(delivered_at), "
        "MIN(delivered_at), MAX(delivered_at) FROM deliveries GROUP BY edition_id"
    )
    op.execute(
        "INSERT INTO send_recipients (edition_id, subscriber_id, batch_id, email, name, format, "
        "list_slug) SELECT d.edition_id, d.subscriber_id, b.id, s.email, s.name, 'html', '' "
        "FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id "
        "JOIN batches b ON b.edition_id = d.edition_id AND b.seq = 1"
    )
    op.drop_table("deliveries")


def downgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("edition_id", sa.String(40), sa.ForeignKey("editions.id"), primary_key=True),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), primary_key=True),
        sa.Column("transport", sa.String(20), nullable=False),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("delivered_at", sa.DateTime, nullable=False),
    )
    op.execute(
        "INSERT INTO deliveries (edition_id, subscriber_id, transport, message_id, delivered_at) "
        "SELECT r.edition_id, r.subscriber_id, b.transport, COALESCE(b.message_id, ''), "
        "COALESCE(b.accepted_at, b.updated) FROM send_recipients r "
        "JOIN batches b ON b.id = r.batch_id WHERE b.state = 'accepted'"
    )
    op.drop_table("send_recipients")
    op.drop_table("batches")
