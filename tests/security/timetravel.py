"""Move "now" for Django, sessions and django-axes (no freezegun: a patch of the clocks they read)."""

from contextlib import contextmanager
from unittest import mock


@contextmanager
def travel(to):
    """Within the block, timezone.now() (and django-axes' copies of it) return `to`."""

    def now():
        return to

    with (
        mock.patch("django.utils.timezone.now", now),
        mock.patch("axes.handlers.proxy.now", now),
        mock.patch("axes.attempts.now", now),
    ):
        yield
