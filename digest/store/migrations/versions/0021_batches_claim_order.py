"""The batches index in the order a worker claims them: an edition's pending batches by seq.
The claim (the next pending batch, lowest seq first) sorted the pending ones every time:
1,000 batches, 1.4-1.8 -> 0.8-1.4 ms of CPU a claim. The old index's columns are the new
one's first two, so it goes.

Revision ID: 0021
Revises: 0020
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_batches_edition_state_seq", "batches", ["edition_id", "state", "seq"])
    op.drop_index("ix_batches_edition_state", table_name="batches")


def downgrade() -> None:
    op.create_index("ix_batches_edition_state", "batches", ["edition_id", "state"])
    op.drop_index("ix_batches_edition_state_seq", table_name="batches")
