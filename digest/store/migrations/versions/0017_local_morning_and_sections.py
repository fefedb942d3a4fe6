"""Each reader's morning and sections: a batch's delivery time and zone, the provider's
scheduled-send batch of an edition, and a membership's chosen sections.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs: everything stored keeps NULL (delivered at once; every section).
    op.add_column("batches", sa.Column("deliver_at", sa.DateTime, nullable=True))
    op.add_column("batches", sa.Column("zone", sa.String(64), nullable=True))
    op.add_column("memberships", sa.Column("sections", sa.Text, nullable=True))
    op.create_table(
        "scheduled_sends",
        sa.Column("edition_id", sa.String(40), sa.ForeignKey("editions.id"), primary_key=True),
        sa.Column("transport", sa.String(20), nullable=False),
        sa.Column("batch_id", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("updated", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("scheduled_sends")
    with op.batch_alter_table("memberships") as batch:
        batch.drop_column("sections")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("zone")
        batch.drop_column("deliver_at")
