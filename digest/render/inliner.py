"""premailer, with what is the same on every call worked out once per process.

Every email of a project inlines the same stylesheet (the template's ``<style>``) into
HTML of the same shape, and premailer redoes it all each time: it turns every parsed rule
back into text, serialises the media queries it keeps, and parses each image's style
again (with validation) to see whether it floats; the same inline style gives the same
``bgcolor``/``width`` attributes. Those results depend only on their input text, so they
are kept here, keyed by it; the output bytes are premailer's own (the golden tests hold
them to it). Imported only to inline: premailer takes half a second to import.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import cssutils  # type: ignore[import-untyped]
from lxml import etree
from premailer import Premailer

# What the email's HTML is inlined with (see digest.render.html.inline_css).
OPTIONS: dict[str, Any] = {
    "allow_network": False,
    "cssutils_logging_level": logging.CRITICAL,
    "remove_classes": False,
    "strip_important": False,
    "keep_style_tags": False,
    "disable_validation": True,
    "cache_css_parsing": True,
    "disable_basic_attributes": ["height"],
}
_KEPT = 64  # stylesheets (and their leftover text) kept: a project has a handful


class KeepingPremailer(Premailer):  # type: ignore[misc]  # premailer has no type hints
    """premailer's ``transform``, its per-stylesheet and per-style results kept (for this
    instance's options: make one and use it for every call)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rules: dict[tuple[str, int], tuple[list[Any], list[Any]]] = {}
        self._leftover_text: dict[int, tuple[list[Any], str]] = {}
        self._attributes: dict[str, list[tuple[str, str]]] = {}

    def _parse_style_rules(self, css_body: str, ruleset_index: int) -> tuple[list[Any], list[Any]]:
        key = (css_body, ruleset_index)
        found = self._rules.get(key)
        if found is None:
            if len(self._rules) >= _KEPT:
                self._rules.clear()
                self._leftover_text.clear()
            found = self._rules[key] = super()._parse_style_rules(css_body, ruleset_index)
        return found  # transform copies the rules out and only reads the leftover

    def _css_rules_to_string(self, rules: list[Any]) -> str:
        kept = self._leftover_text.get(id(rules))
        if kept is not None and kept[0] is rules:  # the list itself is kept: ids stay its
            return kept[1]
        text: str = super()._css_rules_to_string(rules)
        if any(rules is found[1] for found in tuple(self._rules.values())):  # threads
            self._leftover_text[id(rules)] = (rules, text)
        return text

    def _style_to_basic_html_attributes(
        self, element: Any, style_content: str, force: bool = False
    ) -> None:
        if not force:
            super()._style_to_basic_html_attributes(element, style_content, force)
            return
        found = self._attributes.get(style_content)
        if found is None:  # what premailer would set, recorded on a stand-in element
            recorded = _Recorder()
            super()._style_to_basic_html_attributes(recorded, style_content, True)
            if len(self._attributes) >= 4096:
                self._attributes.clear()
            found = self._attributes[style_content] = list(recorded.attrib.items())
        for key, value in found:
            element.attrib[key] = value


class _Recorder:
    """Stands in for an element: premailer writes its attributes here."""

    def __init__(self) -> None:
        self.attrib: dict[str, str] = {}


@lru_cache(maxsize=1024)
def _float_of(style: str) -> str:
    """An image style's ``float``, as premailer's ``align_floating_images`` reads it."""
    value: str = cssutils.parseStyle(style).float
    return value


_PREMAILER = KeepingPremailer(None, align_floating_images=False, **OPTIONS)


def inline(html: str) -> str:
    """``Premailer(html, **OPTIONS).transform(pretty_print=False)``, byte for byte."""
    stripped = html.strip()
    tree = etree.fromstring(stripped, etree.HTMLParser()).getroottree()
    page = tree.getroot()
    root = tree if stripped.startswith(tree.docinfo.doctype) else page
    _PREMAILER.transform(page)
    for item in page.xpath("//img[@style]"):  # premailer's align_floating_images
        floats = _float_of(item.attrib["style"])
        if floats in ("right", "left"):
            item.attrib["align"] = floats
    out: bytes = etree.tostring(root, method="html", pretty_print=False, encoding="utf-8")
    return out.decode("utf-8")
