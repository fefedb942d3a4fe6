"""The SQL of planning a send, in a few statements whatever the list's size: the
newcomers (who :func:`audience.first_members` names and the edition's ledger does not
hold yet) counted by what decides their batch, then all of them written into the ledger
by one ``INSERT … SELECT``, each row numbered within its bucket to find its batch (on
PostgreSQL both read one copy of the newcomers, made first).

A group is one combination of format, print profile, chosen sections and timezone; the
planner puts each group in a bucket (a variant and a zone: several groups may share one)
and gives each bucket consecutive batches from ``first_seq``. Nothing of a big list is
ever held in memory: the database does the numbering.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from digest.store.audience import first_members
from digest.store.tables import batches, plan_groups, send_recipients, subscribers

TARGET = ("edition_id", "subscriber_id", "batch_id", "email", "name", "format", "list_slug")
SEP = "\x1f"  # between a group key's parts: never in a format, profile, section or zone


@dataclass(frozen=True, slots=True)
class Group:
    format: str
    profile: str | None
    sections: str | None  # as stored: the chosen keys, comma-separated
    timezone: str | None
    count: int
    first: int  # the lowest subscriber id in it: buckets are numbered in that order

    @property
    def key(self) -> str:
        """What :func:`_key_of` computes in SQL for this group's rows."""
        return SEP.join((self.format, self.profile or "", self.sections or "", self.timezone or ""))


@dataclass(frozen=True, slots=True)
class Placed:
    """Where a group's rows go: its bucket, and that bucket's first batch."""

    group: Group
    bucket: int
    first_seq: int

    @property
    def key(self) -> str:
        return self.group.key


@contextmanager
def planning_connection(engine: Engine) -> Iterator[Connection]:
    """A transaction for planning, as ``engine.begin()``. On SQLite with its foreign key
    checks off: the ledger's rows have none since migration 0019, yet with the setting on
    writing a million of them took 0.6-0.9 CPU s more (A/B, 2 pairs); the batches' one
    check is of the edition this transaction locked. SQLite changes the setting only
    between transactions, so it is set before and put back after, whatever happens."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.commit()
        try:
            with conn.begin():
                yield conn
        finally:
            conn.rollback()
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()


def _newcomers(edition_id: str, slugs: list[str]) -> sa.Subquery:
    members = first_members(slugs)
    known = sa.exists().where(
        send_recipients.c.edition_id == edition_id,
        send_recipients.c.subscriber_id == members.c.subscriber_id,
    )
    return sa.select(members).where(~known).subquery("newcomers")


def _key_of(rows: sa.Subquery) -> sa.ColumnElement[str]:
    parts = [
        rows.c.format,
        sa.func.coalesce(rows.c.profile, ""),
        sa.func.coalesce(rows.c.sections, ""),
        sa.func.coalesce(rows.c.timezone, ""),
    ]
    key: sa.ColumnElement[str] = parts[0]
    for part in parts[1:]:
        key = key + SEP + part
    return key


# PostgreSQL: the newcomers copied once, counted and numbered from the copy (finding
# them again to write them was a second pass over the memberships).
_copied = sa.Table(
    "plan_newcomers",
    sa.MetaData(),
    sa.Column("subscriber_id", sa.Integer),
    sa.Column("email", sa.String(320)),
    sa.Column("name", sa.Text),
    sa.Column("format", sa.String(10)),
    sa.Column("list_slug", sa.String(100)),
    sa.Column("profile", sa.String(100)),
    sa.Column("timezone", sa.String(64)),
    sa.Column("sections", sa.Text),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)


def _newcomers_of(conn: Connection, edition_id: str, slugs: list[str]) -> sa.Subquery:
    """The newcomers, as :func:`newcomer_groups` counted them in this transaction."""
    if conn.dialect.name != "postgresql":
        return _newcomers(edition_id, slugs)
    return sa.select(_copied).subquery("newcomers")


def newcomer_groups(conn: Connection, edition_id: str, slugs: list[str]) -> list[Group]:
    """The newcomers on ``slugs``, counted per group."""
    rows = _newcomers(edition_id, slugs)
    if conn.dialect.name == "postgresql":
        _copied.drop(conn, checkfirst=True)
        _copied.create(conn)
        conn.execute(sa.insert(_copied).from_select(list(rows.c.keys()), sa.select(rows)))
        conn.exec_driver_sql("ANALYZE plan_newcomers")  # nothing else tells its planner
        rows = _newcomers_of(conn, edition_id, slugs)
    columns = (rows.c.format, rows.c.profile, rows.c.sections, rows.c.timezone)
    first = sa.func.min(rows.c.subscriber_id)
    query = sa.select(*columns, sa.func.count(), first).group_by(*columns).order_by(first)
    return [Group(*row) for row in conn.execute(query)]


def write_newcomers(
    conn: Connection, edition_id: str, slugs: list[str], placed: Sequence[Placed], size: int
) -> int:
    """Every newcomer into its batch (created already: a bucket's ``first_seq`` onwards,
    ``size`` each). Returns how many rows were written; someone who joined since
    :func:`newcomer_groups` counted waits for the next send."""
    if not placed:
        return 0
    if conn.dialect.name == "sqlite":
        return _write_numbered_by_rowid(conn, edition_id, slugs, placed, size)
    return _write_numbered_by_window(conn, edition_id, slugs, placed, size)


def _write_numbered_by_rowid(
    conn: Connection, edition_id: str, slugs: list[str], placed: Sequence[Placed], size: int
) -> int:
    """SQLite: the newcomers copied, narrow, into a temporary table in bucket order, so
    each row's rowid numbers it (a window numbering a million rows took three times as
    long); groups matched on their columns, not on a key made per row."""
    temp = sa.MetaData()
    groups = sa.Table(
        "plan_temp_groups",
        temp,
        sa.Column("format", sa.String(10)),
        sa.Column("profile", sa.String(100)),
        sa.Column("sections", sa.Text),
        sa.Column("timezone", sa.String(64)),
        sa.Column("bucket", sa.Integer),
        sa.Column("shift", sa.Integer),
        prefixes=["TEMPORARY"],
    )
    rows = sa.Table(
        "plan_temp_rows",
        temp,
        sa.Column("n", sa.Integer, primary_key=True),  # the rowid: 1, 2, ... in bucket order
        sa.Column("subscriber_id", sa.Integer),
        sa.Column("format", sa.String(10)),
        sa.Column("list_slug", sa.String(100)),
        sa.Column("shift", sa.Integer),
        prefixes=["TEMPORARY"],
    )
    temp.drop_all(conn)  # (a connection keeps its temporary tables; none outlives a plan)
    temp.create_all(conn)
    # Row n of a bucket whose rows start at n = base is in batch first_seq + (n - base) //
    # size, that is (n + shift) // size with shift = first_seq * size - base (never < 0).
    counts = Counter[int]()
    for p in placed:
        counts[p.bucket] += p.group.count
    base, bases = 1, {}
    for bucket in sorted(counts):
        bases[bucket] = base
        base += counts[bucket]
    conn.execute(
        sa.insert(groups),
        [
            {
                "format": p.group.format,
                "profile": p.group.profile,
                "sections": p.group.sections,
                "timezone": p.group.timezone,
                "bucket": p.bucket,
                "shift": p.first_seq * size - bases[p.bucket],
            }
            for p in placed
        ],
    )
    new = _newcomers(edition_id, slugs)
    match = sa.and_(
        groups.c.format == new.c.format,
        groups.c.profile.is_not_distinct_from(new.c.profile),
        groups.c.sections.is_not_distinct_from(new.c.sections),
        groups.c.timezone.is_not_distinct_from(new.c.timezone),
    )
    ordered = (
        sa.select(new.c.subscriber_id, new.c.format, new.c.list_slug, groups.c.shift)
        .join(groups, match)
        .order_by(groups.c.bucket, new.c.subscriber_id)
    )
    target = ("subscriber_id", "format", "list_slug", "shift")
    copied = conn.execute(sa.insert(rows).from_select(target, ordered)).rowcount
    if copied != base - 1:  # the write lock is held since the count: it cannot happen
        raise RuntimeError(f"planned {base - 1} newcomers but found {copied}")
    seq = _divided(rows.c.n + rows.c.shift, size)
    source = _ledger_rows(edition_id, rows, seq, subscribers).order_by(rows.c.n)
    written = conn.execute(sa.insert(send_recipients).from_select(TARGET, source)).rowcount
    temp.drop_all(conn)
    return int(written)


def _write_numbered_by_window(
    conn: Connection, edition_id: str, slugs: list[str], placed: Sequence[Placed], size: int
) -> int:
    """PostgreSQL: each row numbered within its bucket by ``ROW_NUMBER()``."""
    conn.execute(sa.delete(plan_groups).where(plan_groups.c.edition_id == edition_id))
    conn.execute(
        sa.insert(plan_groups),
        [
            {"edition_id": edition_id, "key": p.key, "bucket": p.bucket, "first_seq": p.first_seq}
            for p in placed
        ],
    )
    rows = _newcomers_of(conn, edition_id, slugs)
    # The address and name carried through the numbering (joined back from the
    # subscribers, a million index look-ups cost more than the wider sort).
    numbered = (
        sa.select(
            rows.c.subscriber_id,
            rows.c.email,
            rows.c.name,
            rows.c.format,
            rows.c.list_slug,
            plan_groups.c.first_seq,
            sa.func.row_number()
            .over(partition_by=plan_groups.c.bucket, order_by=rows.c.subscriber_id)
            .label("n"),
        )
        .join(
            plan_groups,
            sa.and_(plan_groups.c.edition_id == edition_id, plan_groups.c.key == _key_of(rows)),
        )
        .subquery("numbered")
    )
    seq = numbered.c.first_seq + _divided(numbered.c.n - 1, size)
    source = _ledger_rows(edition_id, numbered, seq, numbered)
    written = conn.execute(sa.insert(send_recipients).from_select(TARGET, source)).rowcount
    conn.execute(sa.delete(plan_groups).where(plan_groups.c.edition_id == edition_id))
    return int(written)


def _divided(numerator: sa.ColumnElement[int], size: int) -> sa.ColumnElement[int]:
    """Integer division in both databases (SQLAlchemy would render // as FLOOR(a / b))."""
    return numerator.self_group().op("/", precedence=8)(size)


def _ledger_rows(
    edition_id: str,
    rows: sa.Table | sa.Subquery,
    seq: sa.ColumnElement[int],
    people: sa.Table | sa.Subquery,
) -> sa.Select[tuple[object, ...]]:
    """The ledger's rows for numbered ``rows`` (subscriber_id, format, list_slug), each
    into the edition's batch ``seq`` gives it; the address and name from ``people``: the
    rows themselves, or the subscribers joined back by id."""
    query = sa.select(
        sa.literal(edition_id, sa.String(40)),
        rows.c.subscriber_id,
        batches.c.id,
        people.c.email,
        people.c.name,
        rows.c.format,
        rows.c.list_slug,
    ).select_from(rows)
    if people is not rows:
        query = query.join(people, people.c.id == rows.c.subscriber_id)
    return query.join(batches, sa.and_(batches.c.edition_id == edition_id, batches.c.seq == seq))
