"""The plain data passed between stages: items, events, editions, recipients."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any


class ItemKind(StrEnum):
    ARTICLE = "article"
    NOTE = "note"
    EDITOR_NOTE = "editor_note"


@dataclass(frozen=True, slots=True)
class Item:
    """One article or staff note, sanitised and ready to show."""

    key: str
    source: str
    section: str
    title: str
    url: str | None
    summary: str
    body_html: str
    published: datetime
    first_seen: datetime
    author: str = ""
    pinned: bool = False
    kind: ItemKind = ItemKind.ARTICLE
    # Where a reprinted story first ran ("The Guardian"); empty for a feed's own stories.
    outlet: str = ""


@dataclass(frozen=True, slots=True)
class Event:
    """One occurrence of a calendar event, with times in the organisation's zone."""

    key: str
    source: str
    title: str
    start: datetime
    end: datetime | None
    all_day: bool
    location: str = ""
    url: str | None = None
    description: str = ""  # cut for the email
    # The whole description when it is longer than the email's cut (print shows it).
    description_full: str = ""


@dataclass(frozen=True, slots=True)
class Section:
    """One section of an edition: items (or events), capped, with a link to the rest.

    ``more_items`` and ``more_events`` are the rest, past the email's cap, in the same
    order: the print edition, which has its own room, takes from them too.
    """

    key: str
    title: str
    items: tuple[Item, ...] = ()
    events: tuple[Event, ...] = ()
    omitted: int = 0
    more_url: str | None = None
    more_items: tuple[Item, ...] = ()
    more_events: tuple[Event, ...] = ()

    @property
    def count(self) -> int:
        return len(self.items) + len(self.events)


@dataclass(frozen=True, slots=True)
class Edition:
    """An assembled edition: what goes out, before rendering."""

    id: str
    subject: str
    preheader: str
    since: datetime
    cutoff: datetime
    editor_note: Item | None
    sections: tuple[Section, ...]
    archive_url: str

    @property
    def last_moment(self) -> datetime:
        """The last instant the edition covers (a past week's cutoff is the next Monday 00:00)."""
        return self.cutoff - timedelta(microseconds=1)

    @property
    def item_count(self) -> int:
        return sum(s.count for s in self.sections) + (1 if self.editor_note else 0)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings)."""
        data: dict[str, Any] = _jsonable(dataclasses.asdict(self))
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Edition:
        """The edition :meth:`to_json` gave (a stored edition, read back)."""
        note = data.get("editor_note")
        return cls(
            id=data["id"],
            subject=data["subject"],
            preheader=data["preheader"],
            since=datetime.fromisoformat(data["since"]),
            cutoff=datetime.fromisoformat(data["cutoff"]),
            editor_note=_item(note) if note else None,
            sections=tuple(_section(s) for s in data["sections"]),
            archive_url=data["archive_url"],
        )


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """One variant of an edition, rendered once, with per-recipient placeholders."""

    subject: str
    html: str
    text: str


@dataclass(frozen=True, slots=True)
class Recipient:
    """One subscriber as a send sees them."""

    id: int
    email: str
    name: str
    format: str = "html"
    lists: tuple[str, ...] = field(default_factory=tuple)
    profile: str | None = None  # print members: their facility profile
    timezone: str | None = None  # an IANA name; None: the organisation's
    sections: tuple[str, ...] | None = None  # the sections they chose; None: every one


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a message (the print edition and its e-message parts)."""

    filename: str
    content_type: str
    data: bytes


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _item(data: dict[str, Any]) -> Item:
    times = {k: datetime.fromisoformat(data[k]) for k in ("published", "first_seen")}
    return Item(**(data | times | {"kind": ItemKind(data["kind"])}))


def _event(data: dict[str, Any]) -> Event:
    end = data.get("end")
    times = {"start": datetime.fromisoformat(data["start"])}
    return Event(**(data | times | {"end": datetime.fromisoformat(end) if end else None}))


def _section(data: dict[str, Any]) -> Section:
    return Section(
        **(
            data
            | {
                "items": tuple(map(_item, data.get("items", ()))),
                "events": tuple(map(_event, data.get("events", ()))),
                "more_items": tuple(map(_item, data.get("more_items", ()))),
                "more_events": tuple(map(_event, data.get("more_events", ()))),
            }
        )
    )
