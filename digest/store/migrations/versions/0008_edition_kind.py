"""An edition's kind (weekly, alert), the list an alert goes to, and when a scheduled one goes.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs: SQLite takes them as they are (no table copy).
    for column in (
        sa.Column("kind", sa.String(20), nullable=False, server_default="weekly"),
        sa.Column("list_slug", sa.String(100), nullable=True),
        sa.Column("send_at", sa.DateTime, nullable=True),
    ):
        op.add_column("editions", column)
    # The last time anything reads an id to learn what it is.
    op.execute("UPDATE editions SET kind = 'alert' WHERE id LIKE 'alert-%'")


def downgrade() -> None:
    with op.batch_alter_table("editions") as batch:
        batch.drop_column("send_at")
        batch.drop_column("list_slug")
        batch.drop_column("kind")
