"""Memberships without the foreign key to their list: on PostgreSQL its per-row check was
half the server's work in importing 100,000 memberships (2.7-2.9 -> 1.4 CPU s). What it
guarded is held by the one place that writes memberships, ``store.audience.add_memberships``,
which refuses a list the lists table does not hold; lists are never deleted (they are
synced from config.toml, and a list taken out of it keeps its row).

Revision ID: 0020
Revises: 0019
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# PostgreSQL's name for the constraint 0001 made unnamed; SQLite's reflected unnamed one is
# given the same name, so one batch serves both.
NAMING = {"fk": "%(table_name)s_%(column_0_name)s_fkey"}
NAME = "memberships_list_slug_fkey"


def upgrade() -> None:
    with op.batch_alter_table("memberships", naming_convention=NAMING) as batch:
        batch.drop_constraint(NAME, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("memberships", naming_convention=NAMING) as batch:
        batch.create_foreign_key(NAME, "lists", ["list_slug"], ["slug"])
