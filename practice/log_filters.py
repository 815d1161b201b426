"""Logging filters that keep secrets out of every log line.

Loaded by the LOGGING setting before the apps are ready, so this module imports nothing from them.
A personal link or a password-reset link carries its secret in the path; Django logs the path of
every 4xx and 5xx response ("Not Found: /a/<token>/"), and the development server logs every
request line. The filter rewrites such paths before any handler sees the record.
"""

import logging
import re

# /a/<token>/ (a partner's personal link) and /accounts/reset/<uid>/<token>/ (password reset).
SECRET_PATHS = [
    re.compile(r"(/a/)[^/\s\"'?#]+"),
    re.compile(r"(/reset/[^/\s\"'?#]+/)(?!set-password)[^/\s\"'?#]+"),
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
