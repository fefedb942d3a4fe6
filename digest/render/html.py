"""The HTML part: Jinja2 renders MJML, mjml-python compiles it, premailer inlines the CSS."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from digest.errors import RenderError
from digest.render.templates import html_env, templates_dir

_PREHEADER = re.compile(r'<div class="preheader"[^>]*>[^<]*</div>')
_BODY = re.compile(r"<body[^>]*>")
_ARTICLE = re.compile(r'<div [^>]*role="article"[^>]*>')
_DOCTYPE = re.compile(r"^\s*<!doctype html>", re.IGNORECASE)
_COLOR_SCHEME_META = (
    '<meta name="color-scheme" content="light dark">'
    '<meta name="supported-color-schemes" content="light dark">'
)


def render_mjml(template: str, **context: Any) -> str:
    """Jinja2: a ``.mjml.j2`` template and its context into MJML source."""
    return html_env().get_template(template).render(**context)


def compile_mjml(source: str) -> str:
    """MJML into email HTML. mjml-python passes unknown tags through silently, so check."""
    try:
        html = str(mjml2html(source))
    except ValueError as exc:
        raise RenderError(
            f"the email template produced invalid MJML ({exc}): "
            "check the templates under templates/email/"
        ) from None
    leftover = re.search(r"<mj-[a-z-]+", html)
    if leftover:
        raise RenderError(
            f"unknown MJML tag {leftover.group()}> in the email template: fix templates/email/"
        )
    return with_main_landmark(preheader_first(html))


def mjml2html(source: str) -> object:
    """mjml-python's compiler, imported on first use: a build served from the render cache
    compiles nothing (and a test can put a trap here)."""
    from mjml import mjml2html as compile_source

    return compile_source(source)


def preheader_first(html: str) -> str:
    """The hidden preview line moved to the very start of ``body``, where inboxes read it
    first (MJML puts raw HTML inside its wrapper)."""
    found = _PREHEADER.search(html)
    body = _BODY.search(html)
    if found is None or body is None or found.start() < body.end():
        return html
    html = html[: found.start()] + html[found.end() :]
    return html[: body.end()] + found.group() + html[body.end() :]


def with_main_landmark(html: str) -> str:
    """The email's one main landmark: a plain ``div role="main"`` just inside MJML's
    ``role="article"`` wrapper (the body's last element), around everything in it."""
    opening = _ARTICLE.search(html)
    end = html.rfind("</div></body>")
    if opening is None or end < opening.end():
        return html
    inside = html[opening.end() : end]
    return f'{html[: opening.end()]}<div role="main">{inside}</div>{html[end:]}'


def inline_css(html: str) -> str:
    """Inline the CSS (media queries and Outlook conditionals kept), offline, quietly."""
    from digest.render.inliner import inline  # premailer: half a second to import

    # premailer only keeps an upper-case doctype; MJML writes a lower-case one.
    inlined = inline(_DOCTYPE.sub("<!DOCTYPE html>", html, count=1))
    if not inlined.lstrip().upper().startswith("<!DOCTYPE HTML>"):
        inlined = "<!DOCTYPE html>\n" + inlined
    head = _COLOR_SCHEME_META + f"<style>{dark_mode_css()}</style>"
    return inlined.replace("<head>", "<head>" + head, 1)


@cache
def dark_mode_css() -> str:
    """templates/email/dark.css, comments and indentation removed."""
    text = (templates_dir() / "email" / "dark.css").read_text(encoding="utf-8")
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return " ".join(text.split())
