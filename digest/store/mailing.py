"""Mailing addresses of print members who get paper directly, and who a print run mails.

A person inside is addressed as facilities require: their name and ID number on the
first line, then the facility, the housing unit when there is one, the street, and the
city, state and ZIP. ``MailingAddress`` is the one owner of those rules: which fields a
complete address needs and the lines it prints as.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.chunks import batched
from digest.store.tables import mailing_addresses, memberships, subscribers, suppressions

ACTIVE = "active"
PRINT = "print"
# Every field, in the order of the CSV columns; unit and address2 may be empty.
FIELDS = ("inmate_id", "facility", "unit", "address1", "address2", "city", "state", "zip")
REQUIRED = ("inmate_id", "facility", "address1", "city", "state", "zip")
# The longest each field may be (the columns' own limits where they have one).
LONGEST = {"inmate_id": 60, "state": 60, "zip": 20}
LONGEST_OTHER = 300
# Each field as a form labels it (and a problem asks for it: "add the ZIP code").
LABELS = {
    "inmate_id": "ID number",
    "facility": "Facility name",
    "unit": "Housing unit",
    "address1": "Street address",
    "address2": "Address line 2",
    "city": "City",
    "state": "State",
    "zip": "ZIP code",
}
CHUNK = 500  # subscribers per IN (...) query


@dataclass(frozen=True, slots=True)
class MailingAddress:
    inmate_id: str = ""
    facility: str = ""
    unit: str = ""
    address1: str = ""
    address2: str = ""
    city: str = ""
    state: str = ""
    zip: str = ""

    @classmethod
    def from_row(cls, row: Any) -> MailingAddress:
        return cls(**{name: getattr(row, name) or "" for name in FIELDS})

    @classmethod
    def cleaned(cls, values: Mapping[str, str]) -> MailingAddress:
        """From what someone typed (a CSV's cells, a form): control characters out, runs of
        whitespace one space, ends stripped; a field not given is empty."""
        return cls(**{name: _clean(values.get(name) or "") for name in FIELDS})

    def problem(self, *, where: str = "columns") -> str | None:
        """Why this address cannot be stored, or None: a field too long, or some fields
        given and a required one not. An empty address is no problem (none is stored)."""
        for name in FIELDS:
            value = getattr(self, name)
            limit = longest(name)
            if len(value) > limit:
                return f"{name} is {len(value)} characters long (at most {limit}): shorten it"
        missing = self.missing()
        if self.is_empty() or not missing:
            return None
        given = next(name for name in FIELDS if getattr(self, name))
        value = getattr(self, given)
        shown = repr(value if len(value) <= 40 else value[:40] + "…")
        wanted = [f"the {_lowered(LABELS[name])}" for name in missing]
        asked = wanted[0] if len(wanted) == 1 else f"{', '.join(wanted[:-1])} and {wanted[-1]}"
        return (
            f"{given} {shown} but no {', '.join(missing)}: add {asked}, "
            f"or leave the address {where} empty"
        )

    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in FIELDS)

    def missing(self) -> list[str]:
        """The required fields that are empty, by their CSV column names."""
        return [name for name in REQUIRED if not getattr(self, name).strip()]

    def lines(self, name: str) -> list[str]:
        """The envelope's lines: name and ID first, as facilities require."""
        first = f"{name} #{self.inmate_id}" if self.inmate_id else name
        unit = f"Unit {self.unit}" if self.unit and not self.unit[:1].isalpha() else self.unit
        place = f"{self.city}, {self.state} {self.zip}".strip(", ")
        return [
            line
            for line in (first, self.facility, unit, self.address1, self.address2, place)
            if line.strip()
        ]

    def values(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class PaperMember:
    """One active print member of a profile who has a mailing address (complete or not)."""

    subscriber_id: int
    email: str
    name: str
    address: MailingAddress


def address_of(conn: Connection, subscriber_id: int) -> MailingAddress | None:
    row = conn.execute(
        sa.select(mailing_addresses).where(mailing_addresses.c.subscriber_id == subscriber_id)
    ).first()
    return MailingAddress.from_row(row) if row is not None else None


def set_address(
    conn: Connection, subscriber_id: int, address: MailingAddress, *, now: datetime
) -> None:
    """Store (or replace) a subscriber's mailing address; an empty one removes it."""
    conn.execute(
        sa.delete(mailing_addresses).where(mailing_addresses.c.subscriber_id == subscriber_id)
    )
    if not address.is_empty():
        conn.execute(
            sa.insert(mailing_addresses).values(
                subscriber_id=subscriber_id, changed=now, **address.values()
            )
        )


def addresses_of(conn: Connection, subscriber_ids: Sequence[int]) -> dict[int, MailingAddress]:
    """The stored addresses of these subscribers (those who have one), by subscriber id."""
    found: dict[int, MailingAddress] = {}
    for chunk in batched(subscriber_ids, CHUNK):
        rows = conn.execute(
            sa.select(mailing_addresses).where(mailing_addresses.c.subscriber_id.in_(chunk))
        )
        found |= {row.subscriber_id: MailingAddress.from_row(row) for row in rows}
    return found


def set_addresses(
    conn: Connection, addresses: Mapping[int, MailingAddress], *, now: datetime
) -> None:
    """:func:`set_address` for many subscribers: per chunk one DELETE and one INSERT of
    all the rows, so an import of thousands makes a few statements, not thousands."""
    for chunk in batched(addresses.items(), CHUNK):
        conn.execute(
            sa.delete(mailing_addresses).where(
                mailing_addresses.c.subscriber_id.in_([sid for sid, _ in chunk])
            )
        )
        rows = [
            {"subscriber_id": sid, "changed": now, **address.values()}
            for sid, address in chunk
            if not address.is_empty()
        ]
        if rows:
            conn.execute(sa.insert(mailing_addresses), rows)


def longest(name: str) -> int:
    """How many characters the field may have."""
    return LONGEST.get(name, LONGEST_OTHER)


def _lowered(label: str) -> str:
    return label if label[:2].isupper() else label.lower()  # "ID number", "ZIP code" stay


def _clean(value: str) -> str:
    # A control character (a tab, a newline, a NUL that PostgreSQL refuses) is a space; a
    # format character (a zero-width space, a right-to-left override) is dropped, so what
    # an envelope prints is what staff see.
    kept: list[str] = []
    for c in value:
        kind = unicodedata.category(c)
        if kind != "Cf":
            kept.append(" " if kind == "Cc" else c)
    return " ".join("".join(kept).split())


def paper_members(
    conn: Connection, profile_of: Callable[[str | None], str]
) -> dict[str, list[PaperMember]]:
    """Active print members with a mailing address, per profile, by facility, then name.

    ``profile_of`` names the profile a membership's own (or missing) one stands for, as
    the send resolves it (``PrintSettings.profile_named``). Unsubscribed and suppressed
    people are never mailed. Each person comes once, however many print lists they are on.
    """
    query = (
        sa.select(
            subscribers.c.id,
            subscribers.c.email,
            subscribers.c.name,
            memberships.c.profile,
            *(mailing_addresses.c[name] for name in FIELDS),
        )
        .join(memberships, memberships.c.subscriber_id == subscribers.c.id)
        .join(mailing_addresses, mailing_addresses.c.subscriber_id == subscribers.c.id)
        .outerjoin(suppressions, suppressions.c.email_key == subscribers.c.email_key)
        .where(
            memberships.c.format == PRINT,
            memberships.c.status == ACTIVE,
            subscribers.c.status == ACTIVE,
            suppressions.c.email_key.is_(None),
        )
        .order_by(mailing_addresses.c.facility, subscribers.c.name, subscribers.c.id)
    )
    seen: set[int] = set()
    found: dict[str, list[PaperMember]] = defaultdict(list)
    for row in conn.execute(query.execution_options(yield_per=1000)):
        if row.id in seen:
            continue
        seen.add(row.id)
        member = PaperMember(row.id, row.email, row.name, MailingAddress.from_row(row))
        found[profile_of(row.profile)].append(member)
    return found
