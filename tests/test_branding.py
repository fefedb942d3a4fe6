"""Branding: the logo served by the web app and linked from every email, the colour checked
for contrast, the footer links in both parts, the list's name at the head of an edition."""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
from pathlib import Path

import lxml.html
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from digest.config import PrintProfile, Secrets, Settings
from digest.config_branding import contrast_with_white
from digest.context import App
from digest.errors import ConfigError
from digest.render import render_email
from digest.render.branding import edition_title, print_logo
from digest.render.emessage import emessage_parts
from digest.render.print import render_print
from digest.render.print_edition import print_files
from digest.web import branding
from digest.web.app import ROUTERS, create_app
from tests.golden_edition import golden_edition
from tests.test_render import hidden, styles

SECRET = "branding-test-secret-key-0123456789"
BASE = "https://digest.coalition.example.org"  # BASE_CONFIG's delivery.base_url


def png(path: Path, size: tuple[int, int] = (320, 80), colour: str = "#1d5c4b") -> bytes:
    """A logo file: a coloured block with a lighter band, on a transparent ground."""
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    image.paste(colour, (0, 0, size[0] // 2, size[1]))
    image.paste("#a0c8bb", (size[0] // 2, 0, size[0], size[1] // 2))
    out = io.BytesIO()
    image.save(out, format="PNG")
    path.write_bytes(out.getvalue())
    return out.getvalue()


BRANDED = """
[branding]
logo = "brand/logo.png"
logo_alt = "Test Coalition"
logo_width = 200
colour = "#1d5c4b"
footer_links = [
  { label = "Donate", url = "https://coalition.example.org/give/" },
  { label = "Friends & allies", url = "http://allies.example.org/" },
]
"""


@pytest.fixture
def branded(make_project, tmp_path: Path):
    (tmp_path / "brand").mkdir()
    data = png(tmp_path / "brand" / "logo.png")
    return make_project(BRANDED), data


def refused(make_project, extra: str) -> str:
    project = make_project(extra)
    with pytest.raises(ConfigError) as caught:
        project.settings()
    return str(caught.value)


# --- the settings ---------------------------------------------------------------------------------


def test_contrast_is_the_wcag_ratio() -> None:
    assert contrast_with_white("#000000") == pytest.approx(21.0)
    assert contrast_with_white("#ffffff") == pytest.approx(1.0)
    assert contrast_with_white("#767676") == pytest.approx(4.54, abs=0.01)  # the lightest AA grey
    assert contrast_with_white("#595959") == pytest.approx(7.0, abs=0.01)  # AAA's grey


@pytest.mark.parametrize("colour", ["#777777", "#7fb3a0", "#ff0", "#e8a33d"])
def test_a_colour_under_4_5_to_1_is_refused_in_one_line(make_project, colour: str) -> None:
    message = refused(make_project, f'[branding]\ncolour = "{colour}"\n')
    assert "\n" not in message
    assert "branding.colour" in message and ":1 with white" in message and "darker" in message


@pytest.mark.parametrize(
    ("colour", "kept"), [("#767676", "#767676"), ("#1D5C4B", "#1d5c4b"), ("#036", "#003366")]
)
def test_a_dark_enough_colour_is_taken(make_project, colour: str, kept: str) -> None:
    settings = make_project(f'[branding]\ncolour = "{colour}"\n').settings()
    assert settings.branding.colour == kept


@pytest.mark.parametrize("colour", ["green", "#12345", "1d5c4b", "#gg0000"])
def test_a_colour_that_is_not_hex_is_refused(make_project, colour: str) -> None:
    message = refused(make_project, f'[branding]\ncolour = "{colour}"\n')
    assert "branding.colour" in message and "hex colour" in message


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ('logo = "brand/logo.png"\n', "branding.logo_alt is required"),
        ('logo = "brand/missing.png"\nlogo_alt = "X"\n', "branding.logo: no such file"),
        ('logo = "brand/logo.svg"\nlogo_alt = "X"\n', "not a PNG, JPEG or GIF"),
        ('footer_links = [{ label = "Donate", url = "/give/" }]\n', "footer_links[1].url"),
        ('footer_links = [{ label = "X", url = "javascript:alert(1)" }]\n', "absolute http(s)"),
        ('footer_links = [{ label = " ", url = "https://x.example.org" }]\n', "label"),
    ],
)
def test_a_broken_logo_or_link_is_refused_in_one_line(
    make_project, tmp_path: Path, extra: str, says: str
) -> None:
    (tmp_path / "brand").mkdir()
    png(tmp_path / "brand" / "logo.png")
    (tmp_path / "brand" / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    message = refused(make_project, "[branding]\n" + extra)
    assert "\n" not in message and says in message, message


# --- the email ------------------------------------------------------------------------------------


def test_the_logo_is_an_img_with_alt_width_and_an_absolute_https_src(branded) -> None:
    project, _ = branded
    html = render_email(golden_edition(), project.settings()).html
    (img,) = lxml.html.document_fromstring(html).xpath("//img")
    assert img.get("alt") == "Test Coalition"
    assert img.get("width") == "200" and img.get("height") == "50"  # 320x80, kept in proportion
    assert "width:200px" in img.get("style").replace(" ", "")
    assert img.get("src").startswith(f"{BASE}/brand/logo.png?v=")
    # A new logo is a new address, so a cached old one is never shown.
    png(project.folder / "brand" / "logo.png", colour="#000000")
    again = render_email(golden_edition(), project.settings()).html
    (img2,) = lxml.html.document_fromstring(again).xpath("//img")
    assert img2.get("src") != img.get("src") and img2.get("src").startswith(BASE)


def test_no_branding_means_no_img_and_the_plain_header(make_project) -> None:
    html = render_email(golden_edition(), make_project().settings()).html
    doc = lxml.html.document_fromstring(html)
    assert doc.xpath("//img") == [] and doc.xpath('//*[contains(@class, "brandbar")]') == []
    assert "#0b5394" in html  # the links keep their plain blue


def test_the_colour_heads_the_email_and_colours_headings_and_links(branded) -> None:
    project, _ = branded
    html = render_email(golden_edition(), project.settings()).html
    doc = lxml.html.document_fromstring(html)
    bar = doc.xpath('//div[contains(@class, "brandbar")]')
    assert bar and "#1d5c4b" in bar[0].get("style")
    assert "#fff" in bar[0].xpath(".//h1")[0].get("style")  # white on the colour
    for heading in doc.xpath("//h2|//h3"):
        assert styles(heading)["color"] == "#1d5c4b", heading.text_content()
    assert all(styles(h)["border-top-color"] == "#1d5c4b" for h in doc.xpath("//h2"))
    story = doc.xpath('//h3/a[contains(@href, "/news/item-1/")]')[0]
    assert styles(story)["color"] == "#1d5c4b"
    body = doc.xpath("//h3")[0].getnext()  # the editor's note's first paragraph
    assert "color" not in styles(body) and styles(body.getparent())["color"] == "#1a1a1a"


def test_dark_mode_keeps_the_bar_white_on_colour_and_text_light(branded) -> None:
    project, _ = branded
    html = render_email(golden_edition(), project.settings()).html
    dark = html[html.index("@media (prefers-color-scheme: dark)") :]
    dark = dark[: dark.index("</style>")]
    assert ".brandbar h1, .brandbar p, .brandbar a { color: #ffffff !important; }" in dark
    assert "h1, h2, h3, p, li, td, div { color: #e8e8e8 !important; }" in dark
    assert "a { color: #8ab4f8 !important; }" in dark  # links light on the dark sheet
    assert ".logo, .logo table, .logo td { background-color: #ffffff !important; }" in dark


def test_footer_links_are_in_the_html_and_the_text(branded) -> None:
    project, _ = branded
    email = render_email(golden_edition(), project.settings())
    doc = lxml.html.document_fromstring(email.html)
    (links,) = doc.xpath('//p[@class="footer-links"]')
    assert not hidden(links) and links.get("hidden") is None
    assert [(a.text, a.get("href")) for a in links.xpath("a")] == [
        ("Donate", "https://coalition.example.org/give/"),
        ("Friends & allies", "http://allies.example.org/"),
    ]
    footer = email.text[email.text.index("-" * 72) :]
    assert "Donate: https://coalition.example.org/give/\n" in footer
    assert "Friends & allies: http://allies.example.org/\n" in footer


def test_the_alert_carries_the_same_branding(branded) -> None:
    from datetime import UTC, datetime

    from digest.alert import render_alert
    from digest.urls import Urls

    project, _ = branded
    settings = project.settings()
    email = render_alert(
        settings,
        Urls(settings.delivery.base_url),
        "Court date moved",
        "Come at **9:30**.",
        alert="alert-1",
        now=datetime(2026, 11, 26, 12, tzinfo=UTC),
    )
    assert f'src="{BASE}/brand/logo.png?v=' in email.html and "brandbar" in email.html
    assert "Donate: https://coalition.example.org/give/" in email.text


# --- the web app ----------------------------------------------------------------------------------


def client(settings: Settings, engine) -> TestClient:
    app = create_app(App(settings, engine, Secrets(secret_key=SECRET)))
    if branding.router not in ROUTERS:  # until digest/web/app.py lists it
        app.include_router(branding.router)
    return TestClient(app)


def test_the_logo_route_serves_the_file_for_a_long_time(branded) -> None:
    project, data = branded
    web = client(project.settings(), project.engine())
    answer = web.get("/brand/logo.png?v=anything")
    assert answer.status_code == 200 and answer.content == data
    assert answer.headers["content-type"] == "image/png"
    assert answer.headers["cache-control"] == "public, max-age=31536000"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert web.head("/brand/logo.png").status_code == 200
    for wrong in ("/brand/logo.jpg", "/brand/other.png", "/brand/..%2Fconfig.toml"):
        assert web.get(wrong).status_code == 404, wrong


def test_a_jpeg_logo_is_served_as_a_jpeg(make_project, tmp_path: Path) -> None:
    (tmp_path / "brand").mkdir()
    Image.new("RGB", (40, 20), "#1d5c4b").save(tmp_path / "brand" / "logo.jpeg", format="JPEG")
    project = make_project('[branding]\nlogo = "brand/logo.jpeg"\nlogo_alt = "T"\n')
    settings = project.settings()
    assert f"{BASE}/brand/logo.jpg?v=" in render_email(golden_edition(), settings).html
    answer = client(settings, project.engine()).get("/brand/logo.jpg")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"


def test_without_a_logo_the_route_is_404(make_project) -> None:
    project = make_project()
    web = client(project.settings(), project.engine())
    assert web.get("/brand/logo.png").status_code == 404
    assert web.get("/brand/logo.jpg").status_code == 404


def test_a_logo_deleted_after_start_is_404_not_500(branded) -> None:
    project, _ = branded
    web = client(project.settings(), project.engine())
    (project.folder / "brand" / "logo.png").unlink()
    assert web.get("/brand/logo.png").status_code == 404


# --- the edition's name ---------------------------------------------------------------------------


NAMED_LISTS = """
[[lists]]
slug = "alerts"
name = "Action alerts"
kind = "alerts"

[[lists]]
slug = "harbor"
name = "The Harbor Weekly"
kind = "digest"

[[lists]]
slug = "inside"
name = "Inside Harbor"
kind = "print"
"""


def test_the_head_of_an_edition_is_the_first_digest_lists_name(make_project) -> None:
    # BASE_CONFIG's first list is "Weekly" (kind digest); others come after it.
    settings = make_project(NAMED_LISTS).settings()
    assert edition_title(settings) == "Weekly"
    assert edition_title(settings, "print") == "Inside Harbor"
    without_print = make_project(NAMED_LISTS.split('[[lists]]\nslug = "inside"')[0])
    assert edition_title(without_print.settings(), "print") == "Weekly"
    assert edition_title(Settings()) == "Weekly digest"  # no lists at all


def test_the_header_says_the_lists_name(make_project, tmp_path: Path) -> None:
    project = make_project(NAMED_LISTS)
    text = project.config.read_text().replace('name = "Weekly"', 'name = "The Harbor Weekly"', 1)
    project.config.write_text(text)
    settings = project.settings()
    email = render_email(golden_edition(), settings)
    meta = lxml.html.document_fromstring(email.html).xpath('//p[@class="meta"]')[0]
    assert meta.text_content() == "The Harbor Weekly, Thursday 26 November 2026"
    assert email.text.split("\n")[1] == "The Harbor Weekly, Thursday 26 November 2026"
    assert "Weekly digest" not in email.html + email.text
    profile = settings.print.profiles[0]
    part = emessage_parts(golden_edition(), settings.organisation, profile, title="Inside Harbor")
    assert part[0].split("\n")[3] == "Inside Harbor, Thursday 26 November 2026"
    files, _ = print_files(golden_edition(), settings)
    parts = [f for f in files if f.filename.endswith(".txt")]
    assert "Inside Harbor, Thursday 26 November 2026" in parts[0].data.decode()
    if shutil.which("pdftotext"):
        pdf = tmp_path / "print.pdf"
        pdf.write_bytes(next(f.data for f in files if f.filename.endswith(".pdf")))
        words = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True)
        assert "Inside Harbor, Thursday 26 November 2026" in " ".join(words.stdout.split())
        assert "Weekly digest" not in words.stdout


# --- the print edition ----------------------------------------------------------------------------


def test_the_print_logo_is_pure_black_and_white(branded) -> None:
    project, _ = branded
    uri = print_logo(project.settings())
    assert uri is not None and uri.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as image:
        ink = image.convert("L")
    assert ink.size == (320, 80) and set(ink.tobytes()) == {0, 255}
    assert ink.getpixel((10, 70)) == 0  # the dark half: black
    assert ink.getpixel((300, 10)) == 255  # the light band: white, not grey
    assert ink.getpixel((300, 70)) == 255  # the transparent ground: the white paper


@pytest.mark.skipif(shutil.which("pdfimages") is None, reason="needs poppler-utils (pdfimages)")
def test_the_print_edition_embeds_the_logo_in_black_and_white(branded, tmp_path: Path) -> None:
    project, _ = branded
    pdf = tmp_path / "print.pdf"
    pdf.write_bytes(render_print(golden_edition(), project.settings(), PrintProfile(name="x")).pdf)
    subprocess.run(["pdfimages", "-png", str(pdf), str(tmp_path / "img")], check=True)
    (found,) = sorted(tmp_path.glob("img-*.png"))  # the logo, and no other image
    with Image.open(found) as image:
        assert image.size == (320, 80)
        assert set(image.convert("L").tobytes()) == {0, 255}
