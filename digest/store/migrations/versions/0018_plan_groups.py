"""Planning a send in one statement: the groups of newcomers (by what decides their
batch) and the batches each group's rows go to, held only while a plan is written.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plan_groups",
        sa.Column("edition_id", sa.String(40), primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("bucket", sa.Integer, nullable=False),
        sa.Column("first_seq", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("plan_groups")
