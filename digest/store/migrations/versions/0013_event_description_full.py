"""An event's whole description, for the print edition (the email shows it cut).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN; stored events keep "" (print shows their cut description until
    # the next collect replaces them).
    op.add_column(
        "events", sa.Column("description_full", sa.Text, nullable=False, server_default="")
    )


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("description_full")
