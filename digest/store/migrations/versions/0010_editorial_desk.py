"""The editorial desk: staff's choices for one edition (per item and for the whole), and
notes written in the console.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "edition_choices",
        sa.Column("edition_id", sa.String(40), primary_key=True),
        sa.Column("item_key", sa.String(200), primary_key=True),  # "" for the edition
        sa.Column("left_out", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("position", sa.Integer, nullable=True),
        sa.Column("pinned", sa.Boolean, nullable=True),
        sa.Column("title", sa.Text, nullable=True),  # for the edition: its subject
        sa.Column("summary", sa.Text, nullable=True),  # for the edition: its preheader
        sa.Column("changed_by", sa.String(320), nullable=False),
        sa.Column("changed_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "staff_notes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("section", sa.String(100), nullable=False),
        sa.Column("pinned", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("editor_note", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("published", sa.DateTime, nullable=False),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("updated", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("staff_notes")
    op.drop_table("edition_choices")
