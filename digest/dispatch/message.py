"""RFC 5322 messages for one recipient, as the outbox writes them."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid

from digest.config import Settings
from digest.dispatch.personal import PersonalLinks, fill
from digest.models import Attachment, Recipient, RenderedEmail

# A long header (List-Unsubscribe with its token) must be folded, never MIME-encoded:
# mail clients cannot read an encoded List-Unsubscribe. RFC 5322's hard limit is 998.
POLICY = SMTP.clone(max_line_length=998)


def build_message(
    settings: Settings,
    email: RenderedEmail,
    recipient: Recipient,
    links: PersonalLinks,
    *,
    list_slug: str,
    now: datetime,
    with_html: bool = True,
    attachments: tuple[Attachment, ...] = (),
) -> EmailMessage:
    """A multipart/alternative (text, then HTML) message, or text only; files attached."""
    delivery = settings.delivery
    values = links.substitutions(recipient)
    msg = EmailMessage(policy=POLICY)
    msg["From"] = formataddr(
        (delivery.from_name or settings.organisation.name, delivery.from_email)
    )
    msg["To"] = formataddr((recipient.name, recipient.email))
    if settings.organisation.reply_to:
        msg["Reply-To"] = settings.organisation.reply_to
    msg["Subject"] = fill(email.subject, values, as_html=False)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid("digest", domain=delivery.from_email.rpartition("@")[2])
    msg["List-ID"] = f"{list_slug} <{list_slug}.{_host(delivery.base_url)}>"
    msg["List-Unsubscribe"] = links.list_unsubscribe
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(
        fill(email.text, values, as_html=False), subtype="plain", cte="quoted-printable"
    )
    if with_html:
        msg.add_alternative(
            fill(email.html, values, as_html=True), subtype="html", cte="quoted-printable"
        )
    for file in attachments:
        maintype, _, subtype = file.content_type.partition(";")[0].partition("/")
        msg.add_attachment(file.data, maintype=maintype, subtype=subtype, filename=file.filename)
    return msg


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "localhost"
