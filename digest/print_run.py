"""The print run: an edition on paper, posted to print members inside who get it directly.

Per print profile with paper members (``digest.store.mailing.paper_members``), in order of
facility, then name:

- ``print-run-<profile>.pdf``: per copy, an address page for a #10 window envelope
  (digest/render/mailing.py) and then the edition's stored print PDF, read once and
  copied behind every address page (digest/render/assembly.py: each copy adds only its
  page objects, a few hundred bytes);
- ``labels-<profile>.pdf``: the same addresses on Avery 5160 sheets;
- ``manifest.csv``: copies, pages per copy and sheets per profile and facility, sheets
  counted single-sided (mailrooms photocopy; a back page may not come back).

A member is in the run only with a whole address that fits the window and a label:
one who lacks a field (``MailingAddress.missing``, or a name) or whose address is too
long is left out and reported, never printed half-addressed. Nothing is written until
every profile's copies and stored PDF are known to be there.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import BinaryIO

from pypdf import PdfReader
from sqlalchemy.engine import Connection

from digest.audience.cells import escape_cell
from digest.config import PrintProfile, Settings
from digest.context import App
from digest.errors import DigestError
from digest.lifecycle.states import NOT_FOR_PAPER, Kind, state_of
from digest.paths import private_folder
from digest.render import mailing as paper
from digest.render.assembly import concatenate, interleave
from digest.render.branding import edition_title
from digest.render.fitting import Fitted, fit_lines, shortfall
from digest.store import editions as editions_store
from digest.store.mailing import PaperMember, paper_members

INCH = 72.0
NOTE_CHARS = 60  # of a facility's name in the mailroom's line on the address page
MANIFEST = "manifest.csv"
ALL = "(all)"
FIX = "add them in the subscriber's page or re-import"
SHORTEN = "shorten it in the subscriber's page or re-import"


class PrintRunError(DigestError):
    """A print run cannot be made: no such edition, no print PDF, nobody to mail."""


@dataclass(frozen=True, slots=True)
class LeftOut:
    """A paper member not in this run, and why ("no inmate_id, zip")."""

    email: str
    profile: str
    why: str
    fix: str


@dataclass(frozen=True, slots=True)
class Copy:
    """One person's copy: who, and their address fitted to the window and a label."""

    member: PaperMember
    window: Fitted
    label: Fitted

    @property
    def facility(self) -> str:
        return self.member.address.facility.strip()


@dataclass(frozen=True, slots=True)
class ProfilePlan:
    """One profile's copies, in mailing order, and the edition's PDF they carry."""

    profile: PrintProfile
    copies: tuple[Copy, ...]
    pdf: bytes
    pages: int  # of the edition's PDF
    sheet: tuple[float, float]  # its page size, inches


@dataclass(frozen=True, slots=True)
class RunPlan:
    edition_id: str
    profiles: tuple[ProfilePlan, ...]
    left_out: tuple[LeftOut, ...]


@dataclass(frozen=True, slots=True)
class ProfileRun:
    """What was written for one profile."""

    profile: str
    copies: int
    facilities: tuple[tuple[str, int], ...]
    pages_per_copy: int
    label_sheets: int
    run_pdf: Path
    labels_pdf: Path

    @property
    def sheets(self) -> int:
        """Single-sided: one sheet per page."""
        return self.copies * self.pages_per_copy


def plan_print_run(app: App, edition_id: str) -> RunPlan:
    """Who gets a copy of ``edition_id`` per profile, and who is left out (PrintRunError
    when the edition or a print PDF that is needed is missing)."""
    with app.engine.connect() as conn:
        stored = editions_store.get_edition(conn, edition_id)
        if stored is None:
            raise PrintRunError(
                f"no edition {edition_id!r}: 'digest editions' lists them (a weekly one is "
                "named by its week, like 2026-W48)"
            )
        if stored.kind == Kind.ALERT:
            raise PrintRunError(f"{edition_id} is an alert: alerts have no print edition")
        state = state_of(conn, edition_id)
        if state in NOT_FOR_PAPER:
            raise PrintRunError(
                f"{edition_id} is {state.label}: approve it (or build it again) before "
                "posting it on paper"
            )
        files = {f.filename: f.data for f in editions_store.get_files(conn, edition_id)}
        members = _members_by_profile(conn, app.settings)
    plans: list[ProfilePlan] = []
    left_out: list[LeftOut] = []
    for profile in app.settings.print.profiles:
        mine = members.get(profile.name, [])
        if not mine:
            continue
        pdf = files.get(f"print-{profile.name}.pdf")
        if pdf is None:
            raise PrintRunError(
                f"edition {edition_id} has no print edition for profile {profile.name!r}, "
                f"which has {len(mine)} paper member(s): run "
                f"'digest build --week {edition_id}' first"
            )
        pages, sheet = _pdf_shape(pdf, profile.name)
        copies = []
        for member in mine:
            copy = _copy_of(member, profile.name, sheet[1])
            if isinstance(copy, LeftOut):
                left_out.append(copy)
            else:
                copies.append(copy)
        if copies:
            plans.append(ProfilePlan(profile, tuple(copies), pdf, pages, sheet))
    return RunPlan(edition_id, tuple(plans), tuple(left_out))


def _members_by_profile(conn: Connection, settings: Settings) -> dict[str, list[PaperMember]]:
    return paper_members(conn, lambda named: settings.print.profile_named(named).name)


def _nobody(left_out: tuple[LeftOut, ...]) -> str:
    if left_out:
        return (
            f"none of the {len(left_out)} paper member(s) has a complete mailing address "
            "(listed above): import their addresses (columns inmate_id, facility, unit, "
            "address1, address2, city, state, zip) or add them in each subscriber's page"
        )
    return (
        "nobody to mail: no active print member has a mailing address; import them "
        "(columns inmate_id, facility, unit, address1, address2, city, state, zip) with "
        "'digest subscribers import FILE.csv --list NAME'"
    )


def _copy_of(member: PaperMember, profile: str, sheet_height: float) -> Copy | LeftOut:
    """The member's copy, or why they are left out: facilities return mail without a
    name and ID, and an address the window or a label cuts off is as good as none."""
    gaps = ([] if member.name.strip() else ["name"]) + member.address.missing()
    if gaps:
        return LeftOut(member.email, profile, f"no {', '.join(gaps)}", FIX)
    lines = member.address.lines(member.name.strip())
    fitted = []
    for where, box in (
        ("envelope window", paper.window_fit(sheet_height)),
        ("label", paper.label_fit()),
    ):
        one = fit_lines(lines, box)
        if one is None:
            taken, held = shortfall(lines, box)
            why = (
                f"address too long for the {where}: {taken} lines at {box.smallest:g}pt, "
                f"it holds {held}"
            )
            return LeftOut(member.email, profile, why, SHORTEN)
        fitted.append(one)
    return Copy(member, *fitted)


def _pdf_shape(pdf: bytes, profile: str) -> tuple[int, tuple[float, float]]:
    """The stored PDF's page count and first page's size in inches."""
    try:
        reader = PdfReader(io.BytesIO(pdf))
        first = reader.pages[0].mediabox
        return len(reader.pages), (float(first.width) / INCH, float(first.height) / INCH)
    except Exception as exc:  # pypdf raises many kinds on a damaged file
        raise PrintRunError(
            f"the stored print edition of profile {profile!r} cannot be read ({exc}): "
            "run 'digest build' again"
        ) from exc


def write_print_run(
    plan: RunPlan,
    settings: Settings,
    folder: Path,
    *,
    on_profile: Callable[[ProfileRun], None] = lambda _: None,
) -> list[ProfileRun]:
    """Every profile's print-run and labels PDF, and the manifest, into ``folder``
    (PrintRunError, with nothing written, when nobody has a complete address)."""
    if not plan.profiles:
        raise PrintRunError(_nobody(plan.left_out))
    org = settings.organisation
    returned = paper.fit_return(org.name, org.postal_address)
    private_folder(folder)
    title = edition_title(settings, "print")
    made = []
    for profile_plan in plan.profiles:
        made.append(_write_profile(profile_plan, plan.edition_id, returned, title, folder))
        on_profile(made[-1])
    written = {p.profile for p in made}
    for profile in settings.print.profiles:  # a profile nobody is mailed now: no stale files
        if profile.name not in written:
            for name in (f"print-run-{profile.name}.pdf", f"labels-{profile.name}.pdf"):
                (folder / name).unlink(missing_ok=True)
    with _replacing(folder / MANIFEST) as out:
        out.write(manifest(made).encode())
    return made


def _write_profile(
    plan: ProfilePlan, edition_id: str, returned: Fitted, title: str, folder: Path
) -> ProfileRun:
    name = plan.profile.name
    copies = plan.copies
    facilities = [(f, len(list(group))) for f, group in groupby(copies, key=lambda c: c.facility)]
    pages = []
    for copy, (number, place, at, of) in zip(copies, _numbering(facilities), strict=True):
        follow = f"{plan.pages} page{'s' if plan.pages != 1 else ''} follow"
        note = f"Copy {number} of {len(copies)} · {_short(place)} ({at} of {of}) · "
        pages.append(paper.AddressPage(copy.window, f"{note}{title}, {edition_id}: {follow}"))
    doc_title = f"{title} {edition_id}, print run ({name})"
    fronts = paper.address_pages(pages, returned, size=plan.sheet, title=doc_title)
    run_pdf = folder / f"print-run-{name}.pdf"
    with _replacing(run_pdf) as out:
        interleave(fronts.shared, fronts.parts, plan.pdf, out, title=doc_title)
    labels_pdf = folder / f"labels-{name}.pdf"
    labels_title = f"{doc_title}: labels"
    with _replacing(labels_pdf) as out:
        concatenate(
            paper.labels([c.label for c in copies], title=labels_title), out, title=labels_title
        )
    return ProfileRun(
        name,
        len(copies),
        tuple(facilities),
        plan.pages + 1,
        paper.sheets_of_labels(len(copies)),
        run_pdf,
        labels_pdf,
    )


def _numbering(facilities: list[tuple[str, int]]) -> Iterator[tuple[int, str, int, int]]:
    """(copy number in the run, facility, number at the facility, copies there)."""
    number = 0
    for facility, count in facilities:
        for at in range(1, count + 1):
            number += 1
            yield number, facility, at, count


def _short(text: str) -> str:
    return text if len(text) <= NOTE_CHARS else text[: NOTE_CHARS - 1].rstrip() + "…"


def manifest(runs: list[ProfileRun]) -> str:
    """``profile,facility,copies,pages_per_copy,sheets`` per facility, a total row per
    profile (facility "(all)") and one for the whole run (profile "(all)")."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(("profile", "facility", "copies", "pages_per_copy", "sheets"))
    for run in runs:
        per = run.pages_per_copy
        for facility, count in run.facilities:
            writer.writerow((run.profile, escape_cell(facility), count, per, count * per))
        writer.writerow((run.profile, ALL, run.copies, per, run.sheets))
    kinds = {run.pages_per_copy for run in runs}
    writer.writerow(
        (
            ALL,
            ALL,
            sum(run.copies for run in runs),
            kinds.pop() if len(kinds) == 1 else "",
            sum(run.sheets for run in runs),
        )
    )
    return text.getvalue()


@contextmanager
def _replacing(path: Path) -> Iterator[BinaryIO]:
    """A file written beside ``path`` and moved over it only once whole."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("wb") as out:
            yield out
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
