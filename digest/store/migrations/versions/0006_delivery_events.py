"""SendGrid's event webhook: every event once, by its sg_event_id, with its raw payload.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_events",
        sa.Column("sg_event_id", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("edition_id", sa.String(40), nullable=True, index=True),
        sa.Column("batch", sa.String(20), nullable=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("received", sa.DateTime, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("delivery_events")
