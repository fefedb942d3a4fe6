"""Canonical URLs and title keys, so the same story from two sources is merged."""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_TRACKING = re.compile(
    r"^(utm_\w*|mc_cid|mc_eid|fbclid|gclid|dclid|gbraid|wbraid|msclkid|yclid|igshid|mkt_tok|"
    r"_hsenc|_hsmi|_ga|_gl|ref_src|ref_url|s_cid|vero_\w+|oly_\w+|wt_\w+|cmpid)$",
    re.IGNORECASE,
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
SIMILAR_TITLE_RATIO = 0.9


def clean_url(url: str) -> str | None:
    """The link to show: http(s) only, tracking parameters and fragment removed, host lower-cased.

    Returns None for anything that is not an absolute http(s) URL.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    if port and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)
    ]
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query), ""))


def url_key(url: str) -> str:
    """A comparison key for a cleaned URL: no scheme, no ``www.``, no trailing slash."""
    parts = urlsplit(url)
    host = parts.netloc.removeprefix("www.")
    path = parts.path.rstrip("/")
    query = "&".join(sorted(parts.query.split("&"))) if parts.query else ""
    return f"{host}{path}?{query}" if query else f"{host}{path}"


def title_key(title: str) -> str:
    """Lower-case, accents and punctuation removed, spaces collapsed."""
    folded = unicodedata.normalize("NFKD", title.casefold())
    letters = "".join(c if c.isalnum() else " " for c in folded if not unicodedata.combining(c))
    return " ".join(letters.split())[:300]


def similar_titles(a: str, b: str) -> bool:
    """True when two title keys are the same headline, give or take a word."""
    if not a or not b:
        return False
    if a == b:
        return True
    if re.findall(r"\d+", a) != re.findall(r"\d+", b):
        return False  # "day 3" and "day 4" are different stories
    matcher = SequenceMatcher(None, a, b)
    return matcher.quick_ratio() >= SIMILAR_TITLE_RATIO and matcher.ratio() >= SIMILAR_TITLE_RATIO
