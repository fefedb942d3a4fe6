"""The audience layer: format per membership, print profiles, suppressions, status times.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("memberships") as batch:
        batch.add_column(sa.Column("format", sa.String(10), nullable=False, server_default="html"))
        batch.add_column(sa.Column("profile", sa.String(100), nullable=True))
        batch.add_column(sa.Column("changed", sa.DateTime, nullable=True))
    # Each membership takes the format its subscriber had: no preference is lost.
    op.execute(
        "UPDATE memberships SET format = (SELECT subscribers.format FROM subscribers "
        "WHERE subscribers.id = memberships.subscriber_id)"
    )
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("format")
        batch.add_column(sa.Column("confirmed", sa.DateTime, nullable=True))
        batch.add_column(sa.Column("unsubscribed", sa.DateTime, nullable=True))
    op.execute("UPDATE subscribers SET confirmed = created WHERE status = 'active'")
    op.create_table(
        "suppressions",
        sa.Column("email_key", sa.String(320), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("suppressions")
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("format", sa.String(10), nullable=False, server_default="html"))
        batch.drop_column("unsubscribed")
        batch.drop_column("confirmed")
    op.execute(
        "UPDATE subscribers SET format = COALESCE((SELECT MIN(memberships.format) FROM "
        "memberships WHERE memberships.subscriber_id = subscribers.id AND "
        "memberships.format IN ('html', 'text')), 'html')"
    )
    with op.batch_alter_table("memberships") as batch:
        batch.drop_column("changed")
        batch.drop_column("profile")
        batch.drop_column("format")
