"""The SQL of planning a send, in a few statements whatever the list's size: the
newcomers (who :func:`audience.first_members` names and the edition's ledger does not
hold yet) counted by what decides their batch, then all of them written into the ledger
by one ``INSERT … SELECT``, each row numbered within its bucket to find its batch (both
read one copy of the newcomers, which the count makes first).

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

SEP = "\x1f"  # between a group key's parts: never in a format, profile, section or zone
TARGET = ("edition_id", "subscriber_id", "batch_id", "email", "name", "format", "list_slug")


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


# The newcomers found once, into a temporary table counted and numbered from (finding
# them again to write them was a second pass over the memberships and subscribers). On
# PostgreSQL with their address and name (joined back by id, a million index look-ups
# cost more than the wider sort), dropped at commit; on SQLite narrow (as fast as wide
# there, A/B x3), dropped once written (a plan rolled back leaves none; one with nobody
# new, an empty one until the next).
def _copy_columns(keyed: bool = False) -> list[sa.Column[object]]:
    return [
        sa.Column("subscriber_id", sa.Integer, primary_key=keyed),
        sa.Column("format", sa.String(10)),
        sa.Column("list_slug", sa.String(100)),
        sa.Column("profile", sa.String(100)),
        sa.Column("timezone", sa.String(64)),
        sa.Column("sections", sa.Text),
    ]


_copied = sa.Table(
    "plan_newcomers",
    sa.MetaData(),
    *_copy_columns(),
    sa.Column("email", sa.String(320)),
    sa.Column("name", sa.Text),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
_copied_narrow = sa.Table(  # keyed by subscriber (SQLite's rowid): read in their order
    "plan_temp_newcomers",
    sa.MetaData(),
    *_copy_columns(keyed=True),
    prefixes=["TEMPORARY"],
)


def _copy_of(conn: Connection) -> sa.Table:
    return _copied if conn.dialect.name == "postgresql" else _copied_narrow


def _newcomers_of(conn: Connection) -> sa.Subquery:
    """The newcomers, as :func:`newcomer_groups` copied and counted them."""
    return sa.select(_copy_of(conn)).subquery("newcomers")


def newcomer_groups(conn: Connection, edition_id: str, slugs: list[str]) -> list[Group]:
    """The newcomers on ``slugs``, counted per group (and copied for write_newcomers)."""
    copy = _copy_of(conn)
    copy.drop(conn, checkfirst=True)
    copy.create(conn)
    rows = _newcomers(edition_id, slugs)
    target = [column.name for column in copy.c]
    conn.execute(sa.insert(copy).from_select(target, sa.select(*(rows.c[n] for n in target))))
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ANALYZE plan_newcomers")  # nothing else tells its planner
    rows = _newcomers_of(conn)
    columns = (rows.c.format, rows.c.profile, rows.c.sections, rows.c.timezone)
    if conn.dialect.name == "sqlite":
        keys = [tuple(key) for key in conn.execute(sa.select(*columns).distinct())]
        if len(keys) <= FEW:
            return _counted_by_filter(conn, rows, keys)
    first = sa.func.min(rows.c.subscriber_id)
    query = sa.select(*columns, sa.func.count(), first).group_by(*columns).order_by(first)
    with _hashed(conn):
        return [Group(*row) for row in conn.execute(query)]


@contextmanager
def _hashed(conn: Connection) -> Iterator[None]:
    """PostgreSQL: the count given the memory to hash its groups (with 4 MB, the default,
    it sorted the million rows: 1.23-1.33 -> 0.36-0.44 s of the server's CPU); the copy and
    the numbering keep theirs (the copy hashed its joins with more, and took 1.4 s longer)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    was = conn.exec_driver_sql("SHOW work_mem").scalar()
    conn.exec_driver_sql("SELECT set_config('work_mem', %s, true)", (COUNT_MEMORY,))
    try:
        yield
    finally:
        conn.exec_driver_sql("SELECT set_config('work_mem', %s, true)", (was,))


COUNT_MEMORY = "64MB"


# Up to this many groups (or buckets) SQLite counts (or numbers) the copy without sorting
# it: one pass a group beats a sort of a million rows (GROUP BY 1.1-1.3 s, DISTINCT and
# FILTER 0.5-0.7 s; a bucket's rows in order 0.3-0.7 s, all of them sorted 1.3-1.9 s).
FEW = 4


def _counted_by_filter(
    conn: Connection, rows: sa.Subquery, keys: list[tuple[str | None, ...]]
) -> list[Group]:
    """SQLite: the groups ``keys`` names (the copy's distinct ones), counted in one pass
    (``FILTER`` clauses, no sort, as GROUP BY's)."""
    if not keys:
        return []
    columns = (rows.c.format, rows.c.profile, rows.c.sections, rows.c.timezone)
    aggregates = []
    for key in keys:
        match = sa.and_(*(c.is_not_distinct_from(v) for c, v in zip(columns, key, strict=True)))
        aggregates += [
            sa.func.count().filter(match),
            sa.func.min(rows.c.subscriber_id).filter(match),
        ]
    counted = conn.execute(sa.select(*aggregates)).one()
    groups = [
        Group(str(fmt), profile, sections, zone, counted[2 * i], counted[2 * i + 1])
        for i, (fmt, profile, sections, zone) in enumerate(keys)
    ]
    return sorted(groups, key=lambda group: group.first)


def write_newcomers(conn: Connection, edition_id: str, placed: Sequence[Placed], size: int) -> int:
    """Every newcomer :func:`newcomer_groups` copied into its batch (created already: a
    bucket's ``first_seq`` onwards, ``size`` each). Returns how many rows were written;
    someone who joined since the copy waits for the next send."""
    if not placed:
        return 0
    offset = batch_id_offset(conn, edition_id, placed)
    if conn.dialect.name == "sqlite":
        written = _write_numbered_by_rowid(conn, edition_id, placed, size, offset)
    else:
        written = _write_numbered_by_window(conn, edition_id, placed, size, offset)
    planned = sum(p.group.count for p in placed)
    if written != planned:  # every row copied is in a group placed: it cannot happen
        raise RuntimeError(f"planned {planned} newcomers but wrote {written}")
    return written


def batch_id_offset(conn: Connection, edition_id: str, placed: Sequence[Placed]) -> int | None:
    """By how much each of the plan's batches' id exceeds its seq, if by the same for all
    (one insert gave them ids in seq order, unless another writer took ids between), else
    None: a row's batch is then its seq plus that, not looked up (SQLite: 0.5-0.6 s of a
    million's 1.3-1.4 s insert). The plan's are the locked edition's from its first seq."""
    start = min(p.first_seq for p in placed)
    difference = batches.c.id - batches.c.seq
    missing = sa.func.max(batches.c.seq) - start + 1 - sa.func.count()  # 0: every seq, once
    query = sa.select(sa.func.min(difference), sa.func.max(difference), missing)
    low, high, gaps = conn.execute(
        query.where(batches.c.edition_id == edition_id, batches.c.seq >= start)
    ).one()
    return int(low) if low is not None and low == high and gaps == 0 else None


def _write_numbered_by_rowid(
    conn: Connection, edition_id: str, placed: Sequence[Placed], size: int, offset: int | None
) -> int:
    """SQLite: the copy's rows copied again, narrow, into a temporary table in bucket
    order, so each row's rowid numbers it (a window numbering a million rows took three
    times as long); groups matched on their columns, not on a key made per row."""
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
    new = _newcomers_of(conn)
    match = sa.and_(
        groups.c.format == new.c.format,
        groups.c.profile.is_not_distinct_from(new.c.profile),
        groups.c.sections.is_not_distinct_from(new.c.sections),
        groups.c.timezone.is_not_distinct_from(new.c.timezone),
    )
    joined = sa.select(new.c.subscriber_id, new.c.format, new.c.list_slug, groups.c.shift)
    joined = joined.join(groups, match)
    target = ("subscriber_id", "format", "list_slug", "shift")
    if len(counts) <= FEW:  # a bucket at a time, each in the copy's (subscriber) order
        for bucket in sorted(counts):
            ordered = joined.where(groups.c.bucket == bucket).order_by(new.c.subscriber_id)
            conn.execute(sa.insert(rows).from_select(target, ordered))
    else:
        ordered = joined.order_by(groups.c.bucket, new.c.subscriber_id)
        conn.execute(sa.insert(rows).from_select(target, ordered))
    seq = _divided(rows.c.n + rows.c.shift, size)
    source = _ledger_rows(edition_id, rows, seq, subscribers, offset).order_by(rows.c.n)
    written = conn.execute(_inserted(source)).rowcount
    temp.drop_all(conn)
    _copied_narrow.drop(conn)
    return int(written)


def _write_numbered_by_window(
    conn: Connection, edition_id: str, placed: Sequence[Placed], size: int, offset: int | None
) -> int:
    """PostgreSQL: each row numbered within its bucket by ``ROW_NUMBER()``."""
    conn.execute(sa.delete(plan_groups).where(plan_groups.c.edition_id == edition_id))
    conn.execute(
        sa.insert(plan_groups),
        [
            {
                "edition_id": edition_id,
                "key": p.group.key,
                "bucket": p.bucket,
                "first_seq": p.first_seq,
            }
            for p in placed
        ],
    )
    rows = _newcomers_of(conn)  # with the address and name (see _copy_columns)
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
    source = _ledger_rows(edition_id, numbered, seq, numbered, offset)
    written = conn.execute(_inserted(source)).rowcount
    conn.execute(sa.delete(plan_groups).where(plan_groups.c.edition_id == edition_id))
    return int(written)


def _inserted(source: sa.Select[tuple[object, ...]]) -> sa.Insert:
    """The ledger's rows written from ``source``, keeping their count (psycopg's is lost
    once SQLAlchemy closes the cursor of a statement that returns no rows)."""
    insert = sa.insert(send_recipients).from_select(TARGET, source)
    return insert.execution_options(preserve_rowcount=True)


def _divided(numerator: sa.ColumnElement[int], size: int) -> sa.ColumnElement[int]:
    """Integer division in both databases (SQLAlchemy would render // as FLOOR(a / b))."""
    return numerator.self_group().op("/", precedence=8)(size)


def _ledger_rows(
    edition_id: str,
    rows: sa.Table | sa.Subquery,
    seq: sa.ColumnElement[int],
    people: sa.Table | sa.Subquery,
    offset: int | None,
) -> sa.Select[tuple[object, ...]]:
    """The ledger's rows for numbered ``rows`` (subscriber_id, format, list_slug), each
    into the edition's batch ``seq`` gives it (``seq + offset``, or joined by seq); the
    address and name from ``people``: the rows themselves, or the subscribers by id."""
    batch_id = batches.c.id if offset is None else (seq + offset).label("batch_id")
    query = sa.select(
        sa.literal(edition_id, sa.String(40)),
        rows.c.subscriber_id,
        batch_id,
        people.c.email,
        people.c.name,
        rows.c.format,
        rows.c.list_slug,
    ).select_from(rows)
    if people is not rows:
        query = query.join(people, people.c.id == rows.c.subscriber_id)
    on_seq = sa.and_(batches.c.edition_id == edition_id, batches.c.seq == seq)
    return query if offset is not None else query.join(batches, on_seq)
