"""Sign-up requests: what one confirmation email confirms, and its delivery queue.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signup_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "subscriber_id",
            sa.Integer,
            sa.ForeignKey("subscribers.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("lists", sa.Text, nullable=False),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("profile", sa.String(100), nullable=True),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("sent", sa.DateTime, nullable=True, index=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_try", sa.DateTime, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("confirmed", sa.DateTime, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("signup_requests")
