"""The accessibility rules, each shown firing on a fixture broken for it, and the sample
edition (HTML email and alert) passing all of them."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from digest.alert import render_alert
from digest.checks.accessibility import ColourPair, check_html
from digest.render import render_email
from digest.urls import Urls
from tests.golden_edition import golden_edition, golden_settings

GOOD = (
    '<!DOCTYPE html><html lang="en" dir="ltr"><body>'
    '<div lang="en" dir="ltr" role="article"><div role="main">'
    '<table role="presentation"><tr><td><h1>Coalition</h1><h2>News</h2>'
    '<h3><a href="https://x.example/a">Council votes for two sites</a></h3>'
    '<img src="https://x.example/logo.png" alt="Coalition logo"></td></tr></table>'
    "</div></div></body></html>"
)

BROKEN = {
    "language": GOOD.replace(' lang="en" dir="ltr"', "", 1),
    "layout-tables": GOOD.replace(' role="presentation"', ""),
    "image-alt": GOOD.replace(' alt="Coalition logo"', ""),
    "heading-order": GOOD.replace("<h2>News</h2>", ""),
    "main-landmark": GOOD.replace(' role="main"', ""),
    "link-text": GOOD.replace("Council votes for two sites", "Read more"),
}


def rules(html: str, pairs: tuple[ColourPair, ...] = ()) -> set[str]:
    return {finding.rule for finding in check_html(html, pairs)}


def test_the_good_fixture_passes() -> None:
    assert check_html(GOOD) == []


@pytest.mark.parametrize("rule", sorted(BROKEN))
def test_each_rule_fires_on_its_broken_fixture(rule: str) -> None:
    assert rules(BROKEN[rule]) == {rule}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("click here", "does not say where it goes"),
        ("https://x.example/a", "a bare address"),
        ("", "has no text"),
    ],
)
def test_link_text_names_what_is_wrong(text: str, why: str) -> None:
    html = GOOD.replace("Council votes for two sites", text)
    (finding,) = check_html(html)
    assert finding.rule == "link-text" and why in finding.what


def test_a_linked_image_is_named_by_its_alt_and_a_data_table_needs_no_role() -> None:
    html = GOOD.replace(
        "Council votes for two sites", '<img src="https://x.example/i.png" alt="Our site">'
    ).replace("</table>", "</table><table><tr><th>Day</th></tr></table>")
    assert check_html(html) == []


def test_a_colour_pair_under_4_5_to_1_is_named() -> None:
    pairs = (
        ColourPair("links on white", "#1d5c4b", "#ffffff"),
        ColourPair("headings on grey", "#999999", "#f2f2f2"),
    )
    (finding,) = check_html(GOOD, pairs)
    assert finding.rule == "contrast" and finding.what.startswith("headings on grey")


def test_the_sample_edition_and_an_alert_pass_every_rule() -> None:
    settings = golden_settings()
    email = render_email(golden_edition(), settings)
    assert check_html(email.html) == []
    alert = render_alert(
        settings,
        Urls(settings.delivery.base_url),
        "Call your council member today",
        "The vote is **tonight**. [Find your member](https://example.org/council).",
        alert="alert-20261126-120000",
        now=datetime(2026, 11, 26, 12, tzinfo=ZoneInfo("America/New_York")),
    )
    assert check_html(alert.html) == []
