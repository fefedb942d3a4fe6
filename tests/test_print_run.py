"""`digest print-run`: address pages for #10 window envelopes, Avery 5160 labels, a manifest.

Geometry is checked on the PDFs themselves, with pdfplumber (where each character sits,
in points from the page's top-left) and pypdf (pages and their sizes), within 1 mm.
"""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pdfplumber
import pytest
import time_machine
from pypdf import PdfReader
from typer.testing import CliRunner

from digest.audience.addresses import email_key
from digest.cli import app
from digest.lifecycle.states import State, transition
from digest.render import mailing as paper
from digest.render.fitting import Fit, dejavu_sans, fit_lines, wrap
from digest.store import editions as editions_store
from digest.store.audience import add_memberships, add_subscribers, sync_lists
from digest.store.mailing import MailingAddress, set_address
from tests.conftest import BASE_CONFIG, EXAMPLE_SOURCES, NOW, QUIET_CHECKS, Project
from tests.test_print_delivery import PRINT_LISTS

PT = 72.0
MM = PT / 25.4
EDITION = "2026-W48"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    address: MailingAddress
    profile: str | None = None


def address(facility: str, inmate_id: str = "A100", unit: str = "B-12", **more: str) -> Any:
    values = {
        "inmate_id": inmate_id,
        "facility": facility,
        "unit": unit,
        "address1": "594 Route 216",
        "city": "Stormville",
        "state": "NY",
        "zip": "12582",
    }
    return MailingAddress(**{**values, **more})


@pytest.fixture(scope="module")
def built_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A project with the examples' week built once (print PDFs stored), to copy per test."""
    folder = tmp_path_factory.mktemp("built")
    (folder / "config.toml").write_text(BASE_CONFIG + EXAMPLE_SOURCES + PRINT_LISTS + QUIET_CHECKS)
    with pytest.MonkeyPatch.context() as env:
        for name in ("DIGEST_DATABASE_URL", "DIGEST_CONFIG", "SENDGRID_API_KEY"):
            env.delenv(name, raising=False)
        runner = CliRunner()
        with time_machine.travel(NOW, tick=False):
            for args in (["collect"], ["build", "--out", str(folder / "built")]):
                result = runner.invoke(app, [*args, "--config", str(folder / "config.toml")])
                assert result.exit_code == 0, result.output
    yield folder


@pytest.fixture
def project(built_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    for name in ("DIGEST_DATABASE_URL", "DIGEST_CONFIG", "SENDGRID_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    shutil.copytree(built_template, tmp_path / "p")
    return Project(tmp_path / "p")


def add_people(project: Project, people: list[Person]) -> None:
    """Active members of the print list, with their addresses set directly (no import)."""
    settings = project.settings()
    with project.engine().begin() as conn:
        sync_lists(conn, settings.lists)
        rows = [
            {
                "email": p.email,
                "email_key": email_key(p.email)[1],
                "name": p.name,
                "status": "active",
                "source": "test",
                "created": NOW,
            }
            for p in people
        ]
        ids = add_subscribers(conn, rows)
        by_email = {p.email: ids[row["email_key"]] for p, row in zip(people, rows, strict=True)}
        add_memberships(
            conn,
            [
                {
                    "subscriber_id": by_email[p.email],
                    "list_slug": "inside",
                    "status": "active",
                    "format": "print",
                    "profile": p.profile,
                    "created": NOW,
                }
                for p in people
            ],
        )
        for p in people:
            set_address(conn, by_email[p.email], p.address, now=NOW)


def print_run(project: Project, *args: str) -> Any:
    result = CliRunner().invoke(
        app, ["print-run", *args, "--config", str(project.config)], catch_exceptions=False
    )
    return result


def many(n: int, facilities: int = 3) -> list[Person]:
    return [
        Person(
            f"p{i:03d}@example.org",
            f"Person {i:03d}",
            address(f"Facility {chr(ord('A') + i % facilities)}", inmate_id=f"N{i:05d}"),
        )
        for i in range(n)
    ]


def words(page: Any) -> list[dict[str, Any]]:
    return list(page.extract_words(keep_blank_chars=True, use_text_flow=True))


def inside(word: dict[str, Any], box: paper.Box, slack: float = MM) -> bool:
    return (
        word["x0"] >= box.left * PT - slack
        and word["x1"] <= box.right * PT + slack
        and word["top"] >= box.top * PT - slack
        and word["bottom"] <= box.bottom * PT + slack
    )


def lines_in(page: Any, box: paper.Box) -> list[str]:
    """The text lines inside ``box``, top to bottom."""
    found = [w for w in words(page) if inside(w, box)]
    rows: dict[int, list[dict[str, Any]]] = {}
    for w in found:
        rows.setdefault(round(w["top"]), []).append(w)
    return [
        " ".join(w["text"] for w in sorted(r, key=lambda w: w["x0"]))
        for _, r in sorted(rows.items())
    ]


# -- the labels ---------------------------------------------------------------------------


def test_labels_sit_on_an_avery_5160_grid(project: Project, monkeypatch) -> None:
    monkeypatch.setattr(paper, "SHEETS_PER_DOCUMENT", 1)  # two documents, put together
    people = many(35)
    add_people(project, people)
    result = print_run(project, EDITION)
    assert result.exit_code == 0, result.output
    out = project.folder / "var" / "print-runs" / EDITION
    expected = sorted(people, key=lambda p: (p.address.facility, p.name))
    with pdfplumber.open(out / "labels-letter6.pdf") as pdf:
        assert len(pdf.pages) == 2  # 35 labels: 30, then 5
        for sheet, page in enumerate(pdf.pages):
            assert (page.width, page.height) == (8.5 * PT, 11 * PT)
            assigned = 0
            for k in range(30):
                n = sheet * 30 + k
                box = paper.label(k)
                # Avery 5160: 3 across, 10 down, 2.625in x 1in, first at (0.1875in, 0.5in)
                assert abs(box.left - (0.1875 + (k % 3) * 2.75)) < 1e-9
                assert abs(box.top - (0.5 + (k // 3) * 1.0)) < 1e-9
                mine = [w for w in words(page) if inside(w, box, slack=0)]
                assigned += len(mine)
                if n >= len(expected):
                    assert mine == []
                    continue
                person = expected[n]
                first = min(mine, key=lambda w: (round(w["top"]), w["x0"]))
                assert first["text"].startswith(person.name), (n, first["text"])
                # the text starts 0.125in inside the label's left edge, within 1 mm
                left = min(w["x0"] for w in mine)
                assert abs(left - (box.left + 0.125) * PT) < MM
                assert min(w["top"] for w in mine) >= (box.top + 0.05) * PT - MM
                assert max(w["bottom"] for w in mine) <= (box.bottom - 0.05) * PT + MM
            # every word on the sheet is inside one label
            assert assigned == len(words(page))
            assert min(c["size"] for c in page.chars) >= 7.99


def test_a_long_facility_name_wraps_or_shrinks_inside_its_label(project: Project) -> None:
    long_name = "Eastern New York Correctional Facility and Reception Center Annex"
    people = [
        Person("long@example.org", "Maximiliano Alejandro Rodríguez", address(long_name)),
        Person("short@example.org", "Bo", address("Zed CF")),
    ]
    add_people(project, people)
    result = print_run(project, EDITION)
    assert result.exit_code == 0, result.output
    assert "not in this run" not in result.output
    out = project.folder / "var" / "print-runs" / EDITION
    with pdfplumber.open(out / "labels-letter6.pdf") as pdf:
        page = pdf.pages[0]
        assert all(
            inside(w, paper.label(0), slack=0) or inside(w, paper.label(1), slack=0)
            for w in words(page)
        )
        text = " ".join(lines_in(page, paper.label(0)))
        assert "Reception Center Annex" in text
        assert min(c["size"] for c in page.chars) >= 7.99


# -- the address pages --------------------------------------------------------------------


def test_the_address_sits_in_the_envelope_window_name_and_id_first(project: Project) -> None:
    add_people(
        project,
        [
            Person("ann@example.org", "Ann Lee", address("Green Haven CF", inmate_id="84A1234")),
            Person("bo@example.org", "Bo Diaz", address("Green Haven CF", inmate_id="99B0001")),
        ],
    )
    result = print_run(project, EDITION)
    assert result.exit_code == 0, result.output
    out = project.folder / "var" / "print-runs" / EDITION
    run_pdf = out / "print-run-letter6.pdf"
    edition_pages = len(PdfReader(project.folder / "built" / "print-letter6.pdf").pages)
    with pdfplumber.open(run_pdf) as pdf:
        page = pdf.pages[0]
        assert (page.width, page.height) == (8.5 * PT, 11 * PT)
        window = paper.window(11)
        # the #10 window: 4.5in x 1.125in, 0.875in from the left, 0.5in above the first fold
        assert (window.left, window.width, window.height) == (0.875, 4.5, 1.125)
        assert abs(window.bottom - (11 / 3 - 0.5)) < 1e-9
        assert abs(window.top - 2.0417) < 0.001
        assert lines_in(page, window) == [
            "Ann Lee #84A1234",
            "Green Haven CF",
            "B-12",
            "594 Route 216",
            "Stormville, NY 12582",
        ]
        in_window = [c for c in page.chars if inside(c, window, slack=0)]
        assert min(c["size"] for c in in_window) >= 10.99
        # 0.125in clear at the left; five lines at 11pt leave about 1/8in above and below
        assert abs(min(c["x0"] for c in in_window) - (0.875 + 0.125) * PT) < MM
        assert min(c["top"] for c in in_window) - window.top * PT > 0.1 * PT
        assert window.bottom * PT - max(c["bottom"] for c in in_window) > 0.1 * PT
        assert lines_in(page, paper.RETURN_WINDOW) == [
            "Test Coalition",
            "PO Box 1",
            "Testville, NY 10001",
        ]
        notes = lines_in(page, paper.Box(0.5, 11 / 3, 7.5, 11 / 3))
        assert notes == [
            f"Copy 1 of 2 · Green Haven CF (1 of 2) · Inside, 2026-W48: {edition_pages} pages "
            "follow"
        ]
        # nothing on the page but the return address, the window, the notes and fold marks
        regions = (window, paper.RETURN_WINDOW, paper.Box(0.5, 11 / 3, 7.5, 11 / 3))
        assert all(any(inside(w, r) for r in regions) for w in words(page))
        assert min(c["size"] for c in page.chars) >= 10.99
        assert {c["non_stroking_color"] for c in page.chars} <= {(0,), (0, 0, 0), None}
        marks = [m for m in page.lines + page.rects if m["width"] < 0.3 * PT]
        folds = sorted({round(m["top"] / PT, 2) for m in marks})
        assert len(marks) == 4 and {round(m["x0"] / PT, 2) for m in marks} == {0.25, 8.0}
        assert folds == [round(11 / 3, 2), round(22 / 3, 2)]
        # the second copy's address page comes after the first copy's edition pages
        second = pdf.pages[1 + edition_pages]
        assert lines_in(second, window)[0] == "Bo Diaz #99B0001"


def test_an_a4_profile_gets_a4_address_pages_with_the_window_on_its_top_third(
    project: Project,
) -> None:
    add_people(project, [Person("a4@example.org", "Cy", address("Elm CF"), profile="jpay")])
    result = print_run(project, EDITION)
    assert result.exit_code == 0, result.output
    out = project.folder / "var" / "print-runs" / EDITION
    assert not (out / "print-run-letter6.pdf").exists()
    with pdfplumber.open(out / "print-run-jpay.pdf") as pdf:
        page = pdf.pages[0]
        height = page.height / PT
        assert abs(page.width - 595.28) < 1 and abs(height - 11.69) < 0.01
        assert lines_in(page, paper.window(height))[0] == "Cy #A100"


def test_copies_go_in_order_of_facility_then_name(project: Project, monkeypatch) -> None:
    monkeypatch.setattr(paper, "PAGES_PER_DOCUMENT", 3)  # two documents of address pages
    people = [
        Person("z@example.org", "Zoe", address("Beta CF")),
        Person("y@example.org", "Yan", address("Alpha CF")),
        Person("x@example.org", "Abe", address("Beta CF")),
        Person("w@example.org", "Wu", address("Alpha CF")),
    ]
    add_people(project, people)
    result = print_run(project, EDITION)
    assert result.exit_code == 0, result.output
    out = project.folder / "var" / "print-runs" / EDITION
    per_copy = len(PdfReader(project.folder / "built" / "print-letter6.pdf").pages) + 1
    with pdfplumber.open(out / "print-run-letter6.pdf") as pdf:
        fronts = [pdf.pages[i] for i in range(0, len(pdf.pages), per_copy)]
        firsts = [lines_in(page, paper.window(11))[:2] for page in fronts]
        # each address page has the return address stamped on it, and only those pages
        returns = [lines_in(page, paper.RETURN_WINDOW) for page in fronts]
        assert returns == [["Test Coalition", "PO Box 1", "Testville, NY 10001"]] * 4
        with pdfplumber.open(project.folder / "built" / "print-letter6.pdf") as edition:
            assert pdf.pages[1].extract_text() == edition.pages[0].extract_text()
            assert pdf.pages[-1].extract_text() == edition.pages[-1].extract_text()
    assert firsts == [
        ["Wu #A100", "Alpha CF"],
        ["Yan #A100", "Alpha CF"],
        ["Abe #A100", "Beta CF"],
        ["Zoe #A100", "Beta CF"],
    ]


# -- the manifest and the counts ----------------------------------------------------------


def test_the_manifest_counts_what_the_pdfs_hold(project: Project) -> None:
    people = [*many(7, facilities=3), Person("a4@x.org", "Cy", address("Elm CF"), profile="jpay")]
    add_people(project, people)
    out = project.folder / "run"
    result = print_run(project, EDITION, "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO((out / "manifest.csv").read_text())))
    assert list(rows[0]) == ["profile", "facility", "copies", "pages_per_copy", "sheets"]
    edition_pages = {
        p: len(PdfReader(project.folder / "built" / f"print-{p}.pdf").pages)
        for p in ("letter6", "jpay")
    }
    for profile in ("letter6", "jpay"):
        mine = [r for r in rows if r["profile"] == profile]
        total = mine[-1]
        assert total["facility"] == "(all)"
        per = edition_pages[profile] + 1
        assert {int(r["pages_per_copy"]) for r in mine} == {per}
        assert sum(int(r["copies"]) for r in mine[:-1]) == int(total["copies"])
        assert all(int(r["sheets"]) == int(r["copies"]) * per for r in mine)
        pages = len(PdfReader(out / f"print-run-{profile}.pdf").pages)
        assert pages == int(total["sheets"]) == int(total["copies"]) * per
        assert len(PdfReader(out / f"labels-{profile}.pdf").pages) == 1
    letter = {r["facility"]: int(r["copies"]) for r in rows if r["profile"] == "letter6"}
    assert letter == {"Facility A": 3, "Facility B": 2, "Facility C": 2, "(all)": 7}
    overall = rows[-1]
    assert (overall["profile"], overall["facility"], overall["copies"]) == ("(all)", "(all)", "8")
    assert int(overall["sheets"]) == sum(
        int(r["sheets"]) for r in rows if r["facility"] == "(all)" and r["profile"] != "(all)"
    )
    assert "single-sided" in result.output
    assert f"7 copies for 3 facilities, {edition_pages['letter6'] + 1} pages each" in result.output


def test_the_edition_pages_are_stored_once_however_many_copies(project: Project) -> None:
    add_people(project, many(60))
    result = print_run(project, EDITION)
    assert result.exit_code == 0, result.output
    out = project.folder / "var" / "print-runs" / EDITION
    edition = (project.folder / "built" / "print-letter6.pdf").stat().st_size
    size = (out / "print-run-letter6.pdf").stat().st_size
    # 60 copies of the edition would be 60 x its size; shared, it is about one, plus the
    # address pages and a few hundred bytes of page objects per copied page
    assert size < edition * 3 + 60 * 4_000, (size, edition)


# -- who is left out, and errors ----------------------------------------------------------


def test_an_incomplete_address_is_reported_and_left_out(project: Project) -> None:
    add_people(
        project,
        [
            Person("ok@example.org", "Ann", address("Green Haven CF")),
            Person(
                "half@example.org", "Half Done", address("Green Haven CF", inmate_id="", zip="")
            ),
            Person("noname@example.org", "", address("Green Haven CF")),
        ],
    )
    result = print_run(project, EDITION)
    assert result.exit_code == 0, result.output
    assert (
        "half@example.org: no inmate_id, zip: not in this run (add them in the subscriber's "
        "page or re-import)" in result.stderr
    )
    assert "noname@example.org: no name: not in this run" in result.stderr
    out = project.folder / "var" / "print-runs" / EDITION
    text = "".join(p.extract_text() for p in PdfReader(out / "labels-letter6.pdf").pages)
    assert "Ann #A100" in text and "Half Done" not in text
    run_text = PdfReader(out / "print-run-letter6.pdf").pages[0].extract_text()
    assert "Copy 1 of 1" in run_text
    assert "1 copy for 1 facility" in result.stdout and "2 left out" in result.stdout


def test_hostile_text_is_printed_as_written_and_too_long_is_left_out(project: Project) -> None:
    add_people(
        project,
        [
            Person(
                "amp@example.org",
                "<b>José</b> & Zoë",
                address("Fishkill <CF> & Annex", unit="", address2="Bldg 3 </div>"),
            ),
            Person(
                "huge@example.org",
                "Too Long",
                address("Huge CF", address1="1 " + "Very Long Street Name " * 30),
            ),
        ],
    )
    result = print_run(project, EDITION)
    assert result.exit_code == 0, result.output
    assert (
        "huge@example.org: address too long for the envelope window: 19 lines at 11pt, it holds "
        "6: not in this run (shorten it in the subscriber's page or re-import)" in result.stderr
    )
    out = project.folder / "var" / "print-runs" / EDITION
    with pdfplumber.open(out / "print-run-letter6.pdf") as pdf:
        lines = lines_in(pdf.pages[0], paper.window(11))
    assert lines == [
        "<b>José</b> & Zoë #A100",
        "Fishkill <CF> & Annex",
        "594 Route 216",
        "Bldg 3 </div>",
        "Stormville, NY 12582",
    ]


def test_a_name_in_another_script_is_printed(project: Project) -> None:
    # Debian's fonts-dejavu-core has no Chinese: without a CJK font, a box is drawn (and
    # WeasyPrint warns); the rest of the address, the ID first, is printed all the same.
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    import subprocess

    add_people(project, [Person("li@example.org", "李 Wei", address("Elmira CF", unit=""))])
    result = print_run(project, EDITION)
    assert result.exit_code == 0, result.output
    out = project.folder / "var" / "print-runs" / EDITION
    text = subprocess.run(
        ["pdftotext", "-f", "1", "-l", "1", str(out / "print-run-letter6.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "李 Wei #A100\nElmira CF\n594 Route 216\nStormville, NY 12582" in text


def test_a_missing_edition_exits_1_with_a_clear_message(project: Project) -> None:
    add_people(project, many(1))
    result = print_run(project, "2099-W01")
    assert result.exit_code == 1
    assert "no edition '2099-W01'" in result.stderr and "digest editions" in result.stderr


def test_a_rejected_edition_is_not_posted(project: Project) -> None:
    add_people(project, many(2))
    with project.engine().begin() as conn:
        transition(conn, EDITION, State.REJECTED, who="editor@example.org", now=NOW)
    result = print_run(project, EDITION)
    assert result.exit_code == 1
    assert f"{EDITION} is rejected: approve it (or build it again)" in result.stderr
    assert not (project.folder / "var" / "print-runs" / EDITION).exists()


def test_an_edition_without_its_print_pdf_says_build_first(project: Project) -> None:
    add_people(project, many(1))
    with project.engine().begin() as conn:
        editions_store.save_files(conn, EDITION, [])
    result = print_run(project, EDITION)
    assert result.exit_code == 1
    assert "no print edition for profile 'letter6'" in result.stderr
    assert "digest build" in result.stderr


def test_nobody_with_a_complete_address_exits_1_saying_what_to_import(project: Project) -> None:
    add_people(project, [Person("half@example.org", "Half", address("X CF", city=""))])
    result = print_run(project, EDITION)
    assert result.exit_code == 1
    assert "half@example.org: no city" in result.stderr
    assert "import their addresses" in result.stderr and "inmate_id" in result.stderr
    assert not (project.folder / "var" / "print-runs" / EDITION / "manifest.csv").exists()


def test_nobody_on_a_print_list_exits_1(project: Project) -> None:
    result = print_run(project, EDITION)
    assert result.exit_code == 1
    assert "nobody to mail" in result.stderr


# -- fitting text into boxes --------------------------------------------------------------


def test_wrapped_lines_never_exceed_the_width() -> None:
    metrics = dejavu_sans()
    text = "Eastern New York Correctional Facility Reception " * 3 + "x" * 120
    for size in (8.0, 11.0):
        parts = wrap(text, size, 170.0, metrics)
        assert len(parts) > 1
        assert all(metrics.width(p, size) <= 170.0 for p in parts)
        assert " ".join(parts).replace(" ", "") == text.strip().replace(" ", "")


def test_fitting_shrinks_before_giving_up() -> None:
    box = Fit(200.0, 40.0, ((12.0, 1.15), (10.0, 1.15), (8.0, 1.15)))
    assert fit_lines(["one", "two"], box).size == 12.0  # type: ignore[union-attr]
    assert fit_lines(["one", "two", "three"], box).size == 10.0  # type: ignore[union-attr]
    assert fit_lines(["line"] * 6, box) is None


def test_fitting_takes_the_largest_size_that_leaves_room() -> None:
    box = Fit(200.0, 60.0, ((14.0, 1.0), (12.0, 1.0), (10.0, 1.0)), room=10.0)
    assert fit_lines(["a", "b", "c"], box).size == 12.0  # type: ignore[union-attr]
    assert fit_lines(["a", "b", "c", "d"], box).size == 10.0  # type: ignore[union-attr]
    # no size leaves the room: the largest that fits at all
    assert fit_lines(["a", "b", "c", "d", "e"], box).size == 12.0  # type: ignore[union-attr]


def test_a_one_line_postal_address_becomes_street_then_city() -> None:
    assert paper.return_lines("PO Box 1, Testville, NY 10001") == [
        "PO Box 1",
        "Testville, NY 10001",
    ]
    assert paper.return_lines("12 Main St\nSuite 4\nAlbany, NY 12207") == [
        "12 Main St",
        "Suite 4",
        "Albany, NY 12207",
    ]


def test_the_shared_parts_are_visible_on_every_address_page(project: Project, monkeypatch) -> None:
    """Rendered by poppler, not only present in the file: the return address and the fold
    marks are drawn over each page's white background, in every document of pages."""
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    import subprocess

    from PIL import Image

    monkeypatch.setattr(paper, "PAGES_PER_DOCUMENT", 2)
    add_people(project, many(3))
    assert print_run(project, EDITION).exit_code == 0
    run_pdf = project.folder / "var" / "print-runs" / EDITION / "print-run-letter6.pdf"
    per_copy = len(PdfReader(project.folder / "built" / "print-letter6.pdf").pages) + 1
    dpi = 50
    for copy in range(3):
        target = project.folder / f"copy-{copy}"
        number = str(copy * per_copy + 1)
        pages = ["-f", number, "-l", number, "-singlefile"]
        subprocess.run(
            ["pdftoppm", "-png", "-gray", "-r", str(dpi), *pages, str(run_pdf), str(target)],
            check=True,
        )
        image = Image.open(f"{target}.png").convert("L")
        fold = paper.Box(0.25, 11 / 3 - 0.05, 0.25, 0.1)
        for box in (paper.RETURN_WINDOW, paper.window(11), fold):
            corners = (box.left, box.top, box.right, box.bottom)
            crop = image.crop(tuple(round(x * dpi) for x in corners))
            assert crop.getextrema()[0] < 128, (copy, box)  # something black is drawn there


def test_render_pages_to_look_at(project: Project) -> None:
    """Not a check: PNGs of an address page and a label sheet under tests/artifacts/, with
    the envelope's windows and the label grid drawn over them in grey, to look at."""
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    import subprocess

    from PIL import Image, ImageDraw

    odd = Person(
        "amp@example.org", "<b>José</b> & 李", address("Fishkill <CF> & Annex " * 3, unit="")
    )
    add_people(project, [*many(28), odd])
    result = print_run(project, EDITION)
    assert result.exit_code == 0, result.output
    out = project.folder / "var" / "print-runs" / EDITION
    ARTIFACTS.mkdir(exist_ok=True)
    dpi = 100
    views = (
        ("print-run-letter6.pdf", "print-run-address", [paper.window(11), paper.RETURN_WINDOW]),
        ("labels-letter6.pdf", "print-run-labels", [paper.label(k) for k in range(30)]),
    )
    for name, target, boxes in views:
        page_one = ["-f", "1", "-l", "1", "-singlefile"]
        subprocess.run(
            [
                "pdftoppm",
                "-png",
                "-r",
                str(dpi),
                *page_one,
                str(out / name),
                str(ARTIFACTS / target),
            ],
            check=True,
        )
        png = ARTIFACTS / f"{target}.png"
        image = Image.open(png).convert("RGB")
        draw = ImageDraw.Draw(image)
        for box in boxes:
            corners = [box.left * dpi, box.top * dpi, box.right * dpi, box.bottom * dpi]
            draw.rectangle(corners, outline=(150, 150, 150))
        image.save(png)
