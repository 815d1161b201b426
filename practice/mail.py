"""Sending e-mail: one message at a time, or a worker's batch over a single connection.

Every e-mail the site sends goes through ``send()``. The worker that delivers a batch of outbox
rows opens one connection for the whole batch (``batch()``), so a hundred reminders cost one SMTP
handshake, not a hundred; a connection that fails is dropped and the next message opens a new one.
Header values are flattened to one line: nothing a person typed (a practice's name) can add a header.
"""

import contextlib
import contextvars
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection

_connection = contextvars.ContextVar("mail_connection", default=None)


def domain():
    """The site's host name, for Message-IDs."""
    return urlsplit(settings.SITE_URL).hostname or "localhost"


def one_line(text):
    """A header value on one line: every run of whitespace (CR and LF included) becomes one space."""
    return " ".join(str(text).split())


@contextlib.contextmanager
def batch():
    """Share one mail connection between every send() inside the block."""
    connection = get_connection()
    token = _connection.set(connection)
    try:
        yield connection
    finally:
        _connection.reset(token)
        with contextlib.suppress(Exception):
            connection.close()


def send(*, to, subject, text, html=None, headers=None, from_email=None):
    """Send one message (through the batch's connection inside ``batch()``)."""
    connection = _connection.get()
    headers = {name: one_line(value) for name, value in (headers or {}).items()}
    message = EmailMultiAlternatives(
        subject=one_line(subject), body=text, from_email=from_email, to=[to], headers=headers, connection=connection
    )
    if html is not None:
        message.attach_alternative(html, "text/html")
    try:
        if connection is not None:
            connection.open()  # a no-op when open; opening here keeps send_messages() from closing it after
        message.send()
    except Exception:
        if connection is not None:  # a broken connection is not reused: the next message opens a new one
            with contextlib.suppress(Exception):
                connection.close()
        raise
