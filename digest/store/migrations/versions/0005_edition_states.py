"""Edition states and their history (who, when), and the job locks of the scheduler.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("editions") as batch:
        batch.add_column(sa.Column("state", sa.String(30), nullable=False, server_default="built"))
    op.create_table(
        "edition_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("edition_id", sa.String(40), nullable=False, index=True),
        sa.Column("state", sa.String(30), nullable=False),
        sa.Column("who", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_table(
        "job_locks",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("until", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("job_locks")
    op.drop_table("edition_events")
    with op.batch_alter_table("editions") as batch:
        batch.drop_column("state")
