"""Mailing addresses of print members who get paper directly, and who a print run mails.

A person inside is addressed as facilities require: their name and ID number on the
first line, then the facility, the housing unit when there is one, the street, and the
city, state and ZIP. ``MailingAddress`` is the one owner of those rules: which fields a
complete address needs and the lines it prints as.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.store.tables import mailing_addresses, memberships, subscribers, suppressions

ACTIVE = "active"
PRINT = "print"
# Every field, in the order of the CSV columns; unit and address2 may be empty.
FIELDS = ("inmate_id", "facility", "unit", "address1", "address2", "city", "state", "zip")
REQUIRED = ("inmate_id", "facility", "address1", "city", "state", "zip")


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


def paper_members(
    conn: Connection, profile: str, *, configured: set[str], default_profile: str
) -> Iterator[PaperMember]:
    """Active print members of the profile with a mailing address, by facility, then name.

    A member who names no profile (or a profile no longer configured) belongs to the
    default one, as the send does. Unsubscribed and suppressed people are never mailed.
    Each person comes once, however many print lists they are on.
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
    for row in conn.execute(query.execution_options(yield_per=1000)):
        if row.id in seen:
            continue
        seen.add(row.id)
        mine = row.profile if row.profile in configured else default_profile
        if mine != profile:
            continue
        yield PaperMember(row.id, row.email, row.name, MailingAddress.from_row(row))
