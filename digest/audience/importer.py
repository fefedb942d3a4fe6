"""Subscribers from a spreadsheet's CSV: forgiving about the file, strict about addresses."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from email_validator import EmailNotValidError
from sqlalchemy.engine import Connection

from digest.audience.addresses import email_key, subscriber_timezone
from digest.audience.cells import field_reader, first_filled, read_rows, unescape_cell
from digest.audience.forgotten import marks_of
from digest.chunks import batched
from digest.collector import collector_paused
from digest.errors import AudienceError
from digest.store import audience as store
from digest.store import bulk, mailing
from digest.store.bulk import Known, Member
from digest.store.mailing import MailingAddress

if TYPE_CHECKING:
    from digest.context import App

EMAIL_HEADERS = {"email", "e-mail", "email address", "e-mail address", "mail", "emailaddress"}
NAME_HEADERS = {"name", "full name", "fullname"}
FIRST_HEADERS = {"first name", "firstname", "first", "given name"}
LAST_HEADERS = {"last name", "lastname", "last", "surname", "family name"}
FORMAT_HEADERS = {"format"}
PROFILE_HEADERS = {"profile", "facility profile", "print profile"}
TIMEZONE_HEADERS = {"timezone", "tz", "time zone"}  # an IANA name; empty: the organisation's
# A print member's mailing address, one column per field (``facility`` is the facility's
# name: the print profile's column is ``profile``).
ADDRESS_HEADERS = {
    "inmate_id": {
        "inmate_id", "inmate id", "inmate number", "inmate #", "id number", "doc number",
        "doc #", "doc id", "prisoner id", "prisoner number",
    },
    "facility": {"facility", "facility name", "institution", "prison"},
    "unit": {"unit", "housing unit", "housing"},
    "address1": {"address1", "address 1", "address", "street", "street address"},
    "address2": {"address2", "address 2"},
    "city": {"city", "town"},
    "state": {"state", "st"},
    "zip": {"zip", "zip code", "zipcode", "postal code", "postcode"},
}  # fmt: skip
FORMATS = ("html", "text", "print")
# How the forms (sign-up, preferences, the console) name each format.
FORMAT_CHOICES = (
    ("html", "Email with pictures and links (HTML)"),
    ("text", "Plain text only"),
    ("print", "A printable edition to post to someone inside"),
)
FORGOTTEN_ROW = "asked to be forgotten: they can sign up again on the website"
CHUNK_ROWS = 5000
PROBLEMS_KEPT = 1000


@dataclass(slots=True)
class Problems:
    """Problems of one kind, as (line, what): the first ``PROBLEMS_KEPT`` are kept to show,
    the rest only counted, so a file of a million bad rows makes a short report. ``len``
    is how many there were in all; iterating gives the kept ones."""

    kept: list[tuple[int, str]] = field(default_factory=list)
    total: int = 0

    def append(self, problem: tuple[int, str]) -> None:
        self.total += 1
        if len(self.kept) < PROBLEMS_KEPT:
            self.kept.append(problem)

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator[tuple[int, str]]:
        return iter(self.kept)

    def __getitem__(self, index: int) -> tuple[int, str]:
        return self.kept[index]

    @property
    def not_shown(self) -> int:
        return self.total - len(self.kept)


@dataclass(slots=True)
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: Problems = field(default_factory=Problems)
    suppressed: Problems = field(default_factory=Problems)
    merged: Problems = field(default_factory=Problems)
    written: bool = False


class Row(NamedTuple):
    """One valid line of the file: a named tuple, as immutable as a frozen dataclass and made
    three times as fast (an import makes one per line)."""

    line: int
    email: str
    key: str
    name: str
    format: str
    profile: str | None
    address: MailingAddress | None = None  # None: the row gave none (a stored one stays)
    timezone: str | None = None  # None: the row gave none (a stored one stays)


@dataclass(frozen=True, slots=True)
class ImportTarget:
    list_slug: str
    status: str  # for new members: active, or pending with --pending
    source: str
    now: datetime
    marks: store.Marks = store.no_marks  # how a forgotten address is recognised


def import_csv(
    app: App,
    path: Path,
    *,
    list_slug: str,
    default_format: str | None,
    pending: bool,
    dry_run: bool,
    now: datetime,
    strict: bool = False,
    file_name: str | None = None,
) -> ImportReport:
    """Add or update the file's subscribers on a list, all in one transaction.

    Suppressed and unsubscribed addresses are never resubscribed (the report lists
    them); those who asked to be forgotten are rejected rows. Nothing is written with
    ``dry_run``, nor with ``strict`` when any row was rejected; the report is the same
    either way (``written`` says which). ``file_name`` is what the subscribers' source
    says (an upload's own name; default the path's).
    """
    settings, engine = app.settings, app.engine
    listed = settings.list_named(list_slug)
    fmt = default_format or ("print" if listed.kind == "print" else "html")
    if fmt not in FORMATS:
        raise AudienceError(f"--format {fmt!r} is not one of: {', '.join(FORMATS)}")
    profiles = {p.name for p in settings.print.profiles}
    report = ImportReport()
    rows = _valid_rows(read_table(path), fmt, profiles, report)
    status = store.PENDING if pending else store.ACTIVE
    # Each chunk's thousands of rows live long enough to reach the collector's oldest
    # generation: its full collections were a quarter of a 100,000-row import's CPU, and
    # an import makes no cycles.
    with collector_paused(), engine.begin() as conn:
        source = f"import {file_name or path.name}"
        target = ImportTarget(list_slug, status, source, now, marks_of(app, conn))
        # It writes every list's row, as a sign-up does first too: a sign-up of an address
        # in the file waits for this transaction, never landing between the look-up of who
        # is known and the insert of who is new (tests/test_import_race.py).
        store.sync_lists(conn, settings.lists)
        refreshed = False
        for chunk in batched(rows, CHUNK_ROWS):
            apply_rows(conn, chunk, target, report)
            if not refreshed and report.added >= CHUNK_ROWS // 2:
                store.refresh_statistics(conn)  # once the tables have clearly grown
                refreshed = True
        if dry_run or (strict and report.rejected):
            conn.rollback()
        else:
            report.written = True
    return report


def apply_rows(
    conn: Connection, rows: list[Row], target: ImportTarget, report: ImportReport
) -> None:
    """Add new subscribers, update known ones, skip the suppressed; in bulk. A row's mailing
    address replaces the stored one; a row without one leaves it as it is."""
    keys = [r.key for r in rows]
    known = bulk.known_for_import(conn, target.list_slug, keys)
    suppressed = bulk.suppressed_among(conn, keys, target.marks)
    blocked = store.suppressions_by_key(conn, suppressed, target.marks)
    addressed = [known[r.key].id for r in rows if r.address is not None and r.key in known]
    stored = mailing.addresses_of(conn, addressed)
    fresh: list[Row] = []
    joining: list[tuple[int, Row]] = []
    addresses: dict[int, MailingAddress] = {}
    for row in rows:
        sub = known.get(row.key)
        member = sub.member if sub is not None else None
        suppression = blocked.get(row.key)
        if suppression is not None and suppression.reason == store.FORGOTTEN:
            report.rejected.append((row.line, FORGOTTEN_ROW))  # nothing of why, nor who
            continue
        why = _why_not(suppression, sub, member)
        if why:
            report.suppressed.append((row.line, f"{row.email}: {why}"))
            continue
        if sub is None:
            fresh.append(row)
            continue
        if row.address is not None and row.address != stored.get(sub.id):
            addresses[sub.id] = row.address
        if _update_known(conn, sub, member, row, target, joining) or sub.id in addresses:
            report.updated += 1
        else:
            report.unchanged += 1
    ids = bulk.add_subscribers(conn, [_new_subscriber(r, target) for r in fresh])
    joining += [(ids[r.key], r) for r in fresh]
    store.add_memberships(conn, [_new_membership(sid, r, target) for sid, r in joining])
    addresses |= {ids[r.key]: r.address for r in fresh if r.address is not None}
    mailing.set_addresses(conn, addresses, now=target.now)
    report.added += len(fresh)


def _why_not(suppression: Any, sub: Known | None, member: Member | None) -> str | None:
    if suppression is not None:
        return (
            f"suppressed ({suppression.reason}, {suppression.created:%Y-%m-%d}): not resubscribed"
        )
    if sub is not None and sub.status in store.GONE:
        return f"{sub.status}: not resubscribed"
    if member is not None and member.status == store.UNSUBSCRIBED:
        return "unsubscribed from this list: not resubscribed"
    return None


def _update_known(
    conn: Connection,
    sub: Known,
    member: Member | None,
    row: Row,
    target: ImportTarget,
    joining: list[tuple[int, Row]],
) -> bool:
    changes: dict[str, Any] = {}
    if row.name and row.name != sub.name:
        changes["name"] = row.name
    if row.timezone and row.timezone != sub.timezone:
        changes["timezone"] = row.timezone
    if sub.status == store.PENDING and target.status == store.ACTIVE:
        changes |= {"status": store.ACTIVE, "confirmed": target.now}
    if changes:
        store.update_subscriber(conn, sub.id, **changes)
    if member is None:
        joining.append((sub.id, row))
        return True
    wanted = {"format": row.format, "profile": row.profile or member.profile}
    if member.status == store.PENDING and target.status == store.ACTIVE:
        wanted["status"] = store.ACTIVE
    if any(getattr(member, k) != v for k, v in wanted.items()):
        store.update_membership(conn, sub.id, target.list_slug, changed=target.now, **wanted)
        return True
    return bool(changes)


def _new_subscriber(row: Row, target: ImportTarget) -> dict[str, Any]:
    return {
        "email": row.email,
        "email_key": row.key,
        "name": row.name,
        "status": target.status,
        "source": target.source,
        "created": target.now,
        "confirmed": target.now if target.status == store.ACTIVE else None,
        "timezone": row.timezone,
    }


def _new_membership(subscriber_id: int, row: Row, target: ImportTarget) -> dict[str, Any]:
    return {
        "subscriber_id": subscriber_id,
        "list_slug": target.list_slug,
        "status": target.status,
        "format": row.format,
        "profile": row.profile,
        "created": target.now,
    }


def read_table(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header and the (line number, cells) of a CSV file in any common dialect, read
    as it goes; AudienceError when it has no email column."""

    def check_header(header: list[str]) -> None:
        if not EMAIL_HEADERS & set(header):
            found = ", ".join(header)[:80] or "nothing"
            raise AudienceError(
                f"{path}: line 1 has no email column (found: {found}): add a header row with "
                "'email' (and optionally 'name', 'format', 'profile', 'timezone', and for mail "
                "inside 'inmate_id', 'facility', 'unit', 'address1', 'address2', 'city', "
                "'state', 'zip')"
            )

    return read_rows(path, check_header)


def _valid_rows(
    table: tuple[list[str], Iterator[tuple[int, list[str]]]],
    default_format: str,
    profiles: set[str],
    report: ImportReport,
) -> Iterator[Row]:
    header, rows = table
    col = {name: i for i, name in reversed(list(enumerate(header)))}
    email_at = next(col[h] for h in header if h in EMAIL_HEADERS)
    # Which columns hold each field, worked out once for the file, not once per row.
    fmt_of, profile_of, zone_of, name_of, first_of, last_of = (
        field_reader(_columns(col, names))
        for names in (
            FORMAT_HEADERS, PROFILE_HEADERS, TIMEZONE_HEADERS,
            NAME_HEADERS, FIRST_HEADERS, LAST_HEADERS,
        )
    )  # fmt: skip
    postal_at = {field: _columns(col, names) for field, names in ADDRESS_HEADERS.items()}
    first_line: dict[str, int] = {}
    for line, cells in rows:
        address = unescape_cell(cells[email_at]) if email_at < len(cells) else ""
        if not address.strip() and not "".join(cells).strip():
            continue
        try:
            email, key = email_key(address)
        except EmailNotValidError as exc:
            report.rejected.append(
                (line, f"{address.strip()!r}: {exc}" if address.strip() else "no email address")
            )
            continue
        fmt = (fmt_of(cells) or default_format).lower()
        profile = profile_of(cells) or None
        postal = _postal_address(fmt, cells, postal_at)
        try:
            zone = subscriber_timezone(zone_of(cells))
        except AudienceError as exc:
            report.rejected.append((line, str(exc)))
            continue
        problem = _row_problem(fmt, profile, profiles) or (postal and postal.problem())
        if problem:
            report.rejected.append((line, problem))
            continue
        if key in first_line:
            report.merged.append((line, f"{email} is on line {first_line[key]} too: merged"))
            continue
        first_line[key] = line
        name = name_of(cells)
        if not name:
            first, last = first_of(cells), last_of(cells)
            name = f"{first} {last}" if first and last else first or last
        yield Row(line, email, key, " ".join(name.split()), fmt, profile, postal, zone)


def _row_problem(fmt: str, profile: str | None, profiles: set[str]) -> str | None:
    if fmt not in FORMATS:
        return f"format {fmt!r} is not one of: {', '.join(FORMATS)}"
    if profile is not None and profile not in profiles:
        return f"profile {profile!r} is not in [[print.profiles]] ({', '.join(sorted(profiles))})"
    return None


def _postal_address(
    fmt: str, cells: list[str], postal_at: dict[str, list[int]]
) -> MailingAddress | None:
    """A print row's mailing address, or None when it fills no address column. Only print
    members are mailed: on other rows the columns (a CRM's street and ZIP) are ignored."""
    if fmt != "print":
        return None
    address = MailingAddress.cleaned({f: first_filled(cells, at) for f, at in postal_at.items()})
    return None if address.is_empty() else address


def _columns(col: dict[str, int], names: set[str]) -> list[int]:
    """The columns named by any of a field's aliases."""
    return [col[name] for name in names if name in col]
