"""The send ledger's recipient rows without foreign keys: on PostgreSQL their three
per-row checks were 70% of planning a send (200,000 rows: 11.5-12.1 -> 4.5-4.7 CPU s
of the server). What they guarded is held by the code and tested
(tests/test_planning_integrity.py): only planning writes these rows, from the ids it
joins in the same transaction; batches and editions are never deleted; a subscriber is
deleted only when no ledger row names them (digest.audience.privacy). SQLite planned
without them already.

Revision ID: 0019
Revises: 0018
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# PostgreSQL's names for the constraints 0003 made unnamed; SQLite's reflected unnamed
# ones are given the same names, so one batch serves both.
NAMING = {"fk": "%(table_name)s_%(column_0_name)s_fkey"}
REFERENCES = (("edition_id", "editions"), ("subscriber_id", "subscribers"), ("batch_id", "batches"))


def upgrade() -> None:
    with op.batch_alter_table("send_recipients", naming_convention=NAMING) as batch:
        for column, _ in REFERENCES:
            batch.drop_constraint(f"send_recipients_{column}_fkey", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("send_recipients", naming_convention=NAMING) as batch:
        for column, table in REFERENCES:
            batch.create_foreign_key(f"send_recipients_{column}_fkey", table, [column], ["id"])
