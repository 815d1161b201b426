"""Logging filters that keep secrets out of every log line.

Loaded by the LOGGING setting before the apps are ready, so this module imports nothing from them.
Four kinds of address carry a secret in the path: a partner's personal link, a staff invitation,
a partner's stop-reminders link and a password-reset link. Django logs the path of every 4xx and
5xx response ("Not Found: /a/<token>/"), the development server and gunicorn log every request
line. The one ``redact()`` below rewrites such paths, for Django's loggers (``RedactSecrets``, in
LOGGING) and for gunicorn's access and error logs (connection_practice/gunicorn_conf.py).
"""

import logging
import re

# A path separator, also as it appears percent-encoded inside a query string (?next=%2Fa%2F...).
_SLASH = r"(?:/|%2[Ff])"
_SEGMENT = r"(?:(?!%2[Ff])[^/\s\"'?#&])+"

# The token-bearing routes (tests/security/test_logs.py checks every <token> route is here):
# /a/<token>/, /practice/invitation/<token>/, /stop-reminders/<token>/ and
# /accounts/reset/<uidb64>/<token>/ (the uid is no secret; ".../set-password/" carries none).
SECRET_PATHS = [
    re.compile(rf"({_SLASH}a{_SLASH}){_SEGMENT}"),
    re.compile(rf"({_SLASH}invitation{_SLASH}){_SEGMENT}"),
    re.compile(rf"({_SLASH}stop-reminders{_SLASH}){_SEGMENT}"),
    re.compile(rf"({_SLASH}reset{_SLASH}{_SEGMENT}{_SLASH})(?!set-password){_SEGMENT}"),
]
REDACTED = "[redacted]"


def redact(text):
    for pattern in SECRET_PATHS:
        text = pattern.sub(rf"\g<1>{REDACTED}", text)
    return text


class RedactSecrets(logging.Filter):
    """Replace link tokens in a record's message (and its request line) with [redacted]."""

    def filter(self, record):
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is left for the handler to report
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = ()
        return True
