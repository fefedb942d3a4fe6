"""The CSS inliner keeps what is the same on every call: its output is premailer's own,
byte for byte, on the first call and every one after (issue 18)."""

from __future__ import annotations

import pytest
from premailer import Premailer

from digest.render import digest_context
from digest.render.html import compile_mjml, render_mjml
from digest.render.inliner import OPTIONS, KeepingPremailer, inline
from tests.golden_edition import golden_edition, golden_settings

SHEET = """
.lead { color: #1a1a1a; background-color: #abc; width: 600px; height: 20px }
td.box { text-align: center; vertical-align: top; background-color: transparent }
a:hover { color: red }
p { margin: 0 } p.note { margin: 4px !important }
@media only screen and (max-width: 480px) { .lead { width: 100% !important } }
"""
PAGE = (
    "<!DOCTYPE html><html><head><style>{sheet}</style></head><body>"
    '<table><tr><td class="box lead" style="color: blue">cell</td></tr></table>'
    '<p class="note">a note</p><p>plain</p><a href="https://example.org/">link</a>'
    '<img src="a.png" alt="" style="float: right; width: 40px">'
    '<img src="b.png" alt="" style="float:left">{extra}</body></html>'
)


def premailer(html: str) -> str:
    """What premailer itself gives, a fresh instance each time."""
    out: str = Premailer(html, **OPTIONS).transform(pretty_print=False)
    return out


def the_email_html() -> str:
    edition, settings = golden_edition(), golden_settings()
    mjml = render_mjml("email/digest.mjml.j2", **digest_context(edition, settings))
    return compile_mjml(mjml).replace("<!doctype html>", "<!DOCTYPE html>", 1)


@pytest.mark.parametrize(
    "html",
    [
        PAGE.format(sheet=SHEET, extra=""),
        PAGE.format(sheet=SHEET, extra='<p class="note" style="margin: 1px">more</p>'),
        PAGE.format(sheet="p { color: green }", extra="").replace("<!DOCTYPE html>", ""),
    ],
    ids=["page", "another-page-same-sheet", "no-doctype-other-sheet"],
)
def test_the_inliner_gives_premailers_bytes_on_every_call(html: str) -> None:
    expected = premailer(html)
    assert [inline(html) for _ in range(3)] == [expected] * 3


def test_the_email_is_inlined_as_premailer_inlines_it() -> None:
    html = the_email_html()
    expected = premailer(html)
    assert inline(html) == expected
    assert inline(html) == expected  # and again, from what the first call kept


def test_floating_images_get_their_align_attribute_as_premailer_gives_it() -> None:
    out = inline(PAGE.format(sheet=SHEET, extra=""))
    assert '<img src="a.png" alt="" style="float: right; width: 40px" align="right"' in out
    assert 'align="left"' in out


def test_a_fresh_inliner_on_the_same_sheets_agrees_with_a_used_one() -> None:
    pages = [PAGE.format(sheet=SHEET, extra=""), the_email_html()]
    used = KeepingPremailer(None, **OPTIONS)
    for html in pages * 2:
        fresh = KeepingPremailer(None, **OPTIONS)
        assert used.transform(html, pretty_print=False) == fresh.transform(html, pretty_print=False)
