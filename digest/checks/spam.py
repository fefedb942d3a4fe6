"""The spam score of one recipient's message, as sent, from Debian's SpamAssassin.

Local rules only (``-L``: no network tests, no DNS blocklists), no user settings
(``-x``): the same answer on every machine. ``spamassassin -t`` prints the message
followed by its report; the report's table gives each rule hit with its points.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import datetime

from digest.config import Settings
from digest.dispatch.message import build_message
from digest.dispatch.personal import PersonalLinks
from digest.models import Recipient, RenderedEmail
from digest.urls import Urls

COMMAND = ("spamassassin", "-t", "-L", "-x")
TIMEOUT_SECONDS = 120
_TOTAL = re.compile(
    r"^Content analysis details:\s+\((-?[\d.]+) points?, (-?[\d.]+) required\)", re.M
)
_RULE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s+(.*)$")
# A token as long as a real one, so the links weigh what they weigh when sent.
_SAMPLE_TOKEN = "c2FtcGxlOjA6d2Vla2x5OjE3OTU2OTQ0MDA.SAMPLE-signature-0000000000"  # noqa: S105


@dataclass(frozen=True, slots=True)
class RuleHit:
    name: str
    points: float
    description: str


@dataclass(frozen=True, slots=True)
class SpamScore:
    points: float
    required: float
    rules: tuple[RuleHit, ...] = field(default_factory=tuple)


class SpamCheckUnavailable(Exception):
    """SpamAssassin is not installed, or did not answer: the message says which."""


def available() -> bool:
    return shutil.which(COMMAND[0]) is not None


def score(message: bytes) -> SpamScore:
    """Score a whole RFC 5322 message."""
    if not available():
        raise SpamCheckUnavailable(
            "spamassassin is not installed (Debian: apt install spamassassin)"
        )
    try:
        done = subprocess.run(  # noqa: S603 (a fixed command, the message on stdin)
            COMMAND, input=message, capture_output=True, timeout=TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise SpamCheckUnavailable(
            f"spamassassin gave no answer within {TIMEOUT_SECONDS} s"
        ) from None
    return parse_report(done.stdout.decode("utf-8", "replace"))


def parse_report(out: str) -> SpamScore:
    """The points and rule hits of ``spamassassin -t``'s report."""
    total = _TOTAL.search(out)
    if total is None:
        raise SpamCheckUnavailable("spamassassin's answer had no report (run it by hand to see)")
    hits: list[RuleHit] = []
    for line in out[total.end() :].splitlines():
        if (hit := _RULE.match(line)) is not None:
            hits.append(RuleHit(hit[2], float(hit[1]), hit[3].strip()))
        elif hits and line.startswith(" " * 20) and line.strip():  # a description goes on
            last = hits[-1]
            hits[-1] = RuleHit(last.name, last.points, f"{last.description} {line.strip()}")
    return SpamScore(float(total[1]), float(total[2]), tuple(hits))


def sample_message(settings: Settings, email: RenderedEmail, now: datetime) -> bytes:
    """The message one reader of the HTML variant gets, as the outbox writes it."""
    urls = Urls(settings.delivery.base_url)
    domain = settings.delivery.from_email.rpartition("@")[2] or "example.org"
    links = PersonalLinks(
        urls.unsubscribe(_SAMPLE_TOKEN),
        urls.preferences(_SAMPLE_TOKEN),
        f"<{urls.unsubscribe(_SAMPLE_TOKEN)}>, <mailto:{settings.delivery.from_email}"
        f"?subject=unsubscribe%20{_SAMPLE_TOKEN}>",
    )
    reader = Recipient(0, f"reader@{domain}", "A Reader")
    message = build_message(settings, email, reader, links, list_slug="digest", now=now)
    return message.as_bytes()
