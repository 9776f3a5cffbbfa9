"""The one way every mail adapter turns an Email into an RFC 5322 message."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate

from ports.mail import Email


def build_message(email: Email) -> EmailMessage:
    message = EmailMessage()
    message["Message-ID"] = email.message_id
    message["Date"] = formatdate(localtime=False)
    message["From"] = email.sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message.set_content(email.text)
    if email.html is not None:
        message.add_alternative(email.html, subtype="html")
    return message
