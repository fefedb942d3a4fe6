"""RSS, Atom and JSON Feed documents into sanitised items."""

from __future__ import annotations

import calendar as _calendar
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser

from digest.collect.sanitize import clean_html, cut_at_word, html_to_text, one_line
from digest.collect.urls import clean_url
from digest.errors import SourceError
from digest.models import Item

# feedparser reports a declared-vs-detected charset mismatch as "bozo", but it still decodes.
_HARMLESS_BOZO = ("CharacterEncodingOverride", "NonXMLContentType")


@dataclass(frozen=True, slots=True)
class RawEntry:
    """What one feed entry says, before cleaning."""

    guid: str
    link: str
    title: str
    content_html: str
    published: datetime | None
    author: str  # the people who wrote it, by name ("Jane Doe and Sam Roe")
    outlet: str = ""  # where a reprinted story first ran (RSS <source>, Atom source title)


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    items: list[Item]
    warning: str | None = None


def parse_feed(
    body: bytes,
    *,
    source: str,
    section: str,
    url: str,
    now: datetime,
    summary_chars: int,
    content_type: str = "",
) -> ParsedFeed:
    """Parse a feed body into items; raise SourceError when nothing can be salvaged."""
    if body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{":
        entries, warning = _json_feed_entries(body), None
    else:
        entries, warning = _xml_feed_entries(body, url, content_type)
    items = [_to_item(e, source, section, now, summary_chars) for e in entries]
    return ParsedFeed(items, warning)


def _xml_feed_entries(
    body: bytes, url: str, content_type: str
) -> tuple[list[RawEntry], str | None]:
    # Without a content type feedparser assumes ISO-8859-1 and never asks chardet.
    headers = {"content-location": url, "content-type": content_type or "application/xml"}
    # Our allow-list cleans every field. feedparser's own sanitiser would drop an iframe's
    # tags but keep its fallback inside as text, where ours drops it whole.
    parsed = feedparser.parse(body, response_headers=headers, sanitize_html=False)
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    harmless = problem is not None and type(problem).__name__ in _HARMLESS_BOZO
    if not parsed.entries:
        if not parsed.get("version"):
            raise SourceError("not a feed (no RSS, Atom or JSON Feed found)")
        if problem is not None and not harmless:
            raise SourceError(f"malformed beyond repair ({_describe(problem)})")
        return [], None
    warning = None
    if problem is not None and not harmless:
        warning = f"malformed ({_describe(problem)}); salvaged {len(parsed.entries)} entries"
    return [_from_feedparser(e) for e in parsed.entries], warning


def _describe(problem: Any) -> str:
    line = getattr(problem, "getLineNumber", lambda: None)()
    where = f" at line {line}" if line else ""
    return f"{problem}{where}"


def _from_feedparser(entry: Any) -> RawEntry:
    content = entry.get("content") or []
    html = content[0].get("value", "") if content else entry.get("summary", "")
    stamp = entry.get("published_parsed") or entry.get("updated_parsed")
    return RawEntry(
        guid=str(entry.get("id") or ""),
        link=str(entry.get("link") or ""),
        title=str(entry.get("title") or ""),
        content_html=str(html or ""),
        published=_from_struct(stamp),
        author=_names(entry.get("authors") or []),
        outlet=_outlet(entry.get("source")),
    )


def _names(people: Any) -> str:
    """The authors' names, never their addresses: "Jane Doe", "Jane Doe and Sam Roe".

    RSS ``<author>`` is an email address with the name in brackets, which feedparser
    splits; ``dc:creator``, Atom and JSON Feed authors carry a name. A bare address
    is no byline, and is not published.
    """
    names: list[str] = []
    for person in people if isinstance(people, list) else []:
        name = one_line(str(person.get("name") or "")) if isinstance(person, dict) else ""
        if name and "@" not in name and name not in names:
            names.append(name)
    if len(names) < 2:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _outlet(source: Any) -> str:
    """The title of the feed a reprinted entry came from (RSS ``<source>``, Atom ``source``)."""
    if not isinstance(source, dict):
        return ""
    return str(source.get("title") or "")


def _from_struct(stamp: time.struct_time | None) -> datetime | None:
    if stamp is None:
        return None
    try:
        return datetime.fromtimestamp(_calendar.timegm(stamp), UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _json_feed_entries(body: bytes) -> list[RawEntry]:
    try:
        doc = json.loads(body)
    except RecursionError:  # json gives up on deep nesting ({"a":{"a":...) this way
        raise SourceError("not valid JSON (nested too deeply)") from None
    except UnicodeDecodeError:
        raise SourceError("not valid JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise SourceError(f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or "jsonfeed.org/version" not in str(doc.get("version", "")):
        raise SourceError("JSON but not a JSON Feed (no jsonfeed.org version)")
    entries = []
    for raw in doc.get("items") or []:
        if not isinstance(raw, dict):
            continue
        html = raw.get("content_html") or _text_as_html(raw.get("content_text") or "")
        authors: Any = raw.get("authors") or [raw.get("author")]  # 1.1, else 1.0
        entries.append(
            RawEntry(
                guid=str(raw.get("id") or ""),
                link=str(raw.get("url") or raw.get("external_url") or ""),
                title=str(raw.get("title") or ""),
                content_html=str(html or raw.get("summary") or ""),
                published=_from_iso(raw.get("date_published") or raw.get("date_modified")),
                author=_names(authors),
            )
        )
    return entries


def _text_as_html(text: str) -> str:
    from html import escape

    return "".join(f"<p>{escape(p)}</p>" for p in str(text).split("\n\n"))


def _from_iso(value: Any) -> datetime | None:
    try:
        stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _to_item(entry: RawEntry, source: str, section: str, now: datetime, limit: int) -> Item:
    body = clean_html(entry.content_html)
    text = html_to_text(body)
    title = one_line(html_to_text(entry.title)) or cut_at_word(text, 80) or "(untitled)"
    url = clean_url(entry.link) if entry.link else None
    published = min(entry.published, now) if entry.published else now
    return Item(
        key=item_key(source, entry.guid, url, title, entry.published),
        source=source,
        section=section,
        title=title,
        url=url,
        summary=cut_at_word(text, limit),
        body_html=body,
        published=published,
        first_seen=now,
        author=one_line(html_to_text(entry.author)),
        outlet=one_line(html_to_text(entry.outlet)),
    )


def item_key(source: str, guid: str, url: str | None, title: str, when: datetime | None) -> str:
    """A stable id: the GUID (per source), else the canonical link, else title and date."""
    if guid.strip():
        basis = f"guid\0{source}\0{guid.strip()}"
    elif url:
        basis = f"url\0{url}"
    else:
        basis = f"hash\0{source}\0{title}\0{when.isoformat() if when else ''}"
    return hashlib.sha256(basis.encode()).hexdigest()[:40]
