"""Mailing addresses for print members who get paper directly (the print run).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailing_addresses",
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), primary_key=True),
        sa.Column("inmate_id", sa.String(60), nullable=False, server_default=""),
        sa.Column("facility", sa.Text, nullable=False, server_default=""),
        sa.Column("unit", sa.Text, nullable=False, server_default=""),
        sa.Column("address1", sa.Text, nullable=False, server_default=""),
        sa.Column("address2", sa.Text, nullable=False, server_default=""),
        sa.Column("city", sa.Text, nullable=False, server_default=""),
        sa.Column("state", sa.String(60), nullable=False, server_default=""),
        sa.Column("zip", sa.String(20), nullable=False, server_default=""),
        sa.Column("changed", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mailing_addresses")
