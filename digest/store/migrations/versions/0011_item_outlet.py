"""An item's outlet: where a reprinted story first ran (RSS <source>, Atom source title).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: SQLite takes it as it is (no table copy). Stored items keep "".
    op.add_column("items", sa.Column("outlet", sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_column("outlet")
