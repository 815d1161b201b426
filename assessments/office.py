"""In-office answering: a one-time code opens one partner's response on the practice's device.

The counselor makes a code for one partner from the couple page (``new_code``); the partner types
it on the neutral ``/here/`` page (``redeem``), which starts a partner session marked as an office
session. That session ends when the partner submits, on "Finish for now", or after
``IDLE_SECONDS`` without a request (``idled_out``), and the device shows ``/here/`` again with
nothing of the response, ready for the other partner. Wrong codes (6 digits that open nothing) are
counted per address in the cache; after ``MAX_FAILURES`` in ``FAILURE_WINDOW`` seconds every code
is refused from that address until the window passes.

"This device" needs no code: a signed-in counselor marks the browser as the practice's tablet (a
signed, HTTP-only cookie naming the practice, ``mark_device``), and then, on that browser, hands it
to one partner from the couple page. The counselor's own session ends there and then, and the
partner's office session starts in its place, with the same idle end, finish and neutral screen
as after a code. Handing it to the other partner takes the counselor's sign-in again (or a code):
whoever holds the tablet can never start anyone's session.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from .models import OfficeCode, Response

CODE_DIGITS = 6
VALID_FOR = timedelta(minutes=30)
IDLE_SECONDS = 5 * 60
MAX_FAILURES = 5
FAILURE_WINDOW = 15 * 60
SESSION_FLAG = "office_session"  # the partner session was opened with a code, on an office device
SEEN_KEY = "office_seen"  # when that session last made a request (epoch seconds)
THANKS_KEY = "office_thanks"  # the device's next /here/ says "thank you" once (nothing of the response)
DEVICE_COOKIE = "practice_device"  # this browser is a practice's tablet (signed; names the practice only)
DEVICE_SALT = "assessments.office.device"
DEVICE_MAX_AGE = 365 * 24 * 60 * 60


def code_hash(code):
    """The stored form of a code: an HMAC under SECRET_KEY (a copy of the database cannot try a million codes)."""
    return hmac.new(settings.SECRET_KEY.encode(), f"office-code:{code}".encode(), hashlib.sha256).hexdigest()


def new_code(response, *, by, now=None):
    """A fresh code for ``response``; any earlier unused code of it stops working. Returns (code, OfficeCode)."""
    now = now or timezone.now()
    with transaction.atomic():
        OfficeCode.objects.filter(response=response).live(now).update(expires_at=now)
        for _attempt in range(20):
            code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
            # Two live codes must never be equal: a code names one response.
            if not OfficeCode.objects.live(now).filter(code_hash=code_hash(code)).exists():
                break
        row = OfficeCode.objects.create(
            response=response, code_hash=code_hash(code), created_by=by, created_at=now, expires_at=now + VALID_FOR
        )
    return code, row


def _failures_key(address):
    return f"office-code-failures:{address}"


def throttled(address):
    return (cache.get(_failures_key(address)) or 0) >= MAX_FAILURES


def count_failure(address):
    key = _failures_key(address)
    if not cache.add(key, 1, FAILURE_WINDOW):
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, FAILURE_WINDOW)


def redeem(code, now=None):
    """The response a live code opens, using the code up; None for a wrong, used or expired code."""
    now = now or timezone.now()
    if not (isinstance(code, str) and len(code) == CODE_DIGITS and code.isdigit()):
        return None
    with transaction.atomic():
        row = OfficeCode.objects.live(now).filter(code_hash=code_hash(code)).first()
        if row is None or not OfficeCode.objects.filter(pk=row.pk, used_at__isnull=True).update(used_at=now):
            return None  # a second device racing for the same code gets nothing
    return (
        Response.objects.select_related("partner", "assignment__couple__practice", "assignment__couple__counselor")
        .filter(pk=row.response_id)
        .first()
    )


def is_office_session(session):
    return bool(session.get(SESSION_FLAG))


def idled_out(session, now=None):
    """Has this office session gone IDLE_SECONDS without a request? (False for an ordinary partner session.)"""
    if not is_office_session(session):
        return False
    now = int((now or timezone.now()).timestamp())
    return now - session.get(SEEN_KEY, 0) > IDLE_SECONDS


def touch(session, now=None):
    """Note a request of an office session: its 5-minute idle end slides from here.

    The session row itself keeps the partner sessions' expiry (practice.security); the idle end is
    enforced here, on the server, whatever the cookie says.
    """
    if is_office_session(session):
        session[SEEN_KEY] = int((now or timezone.now()).timestamp())


# --- "This device": a browser marked as the practice's tablet -------------------------------------


def mark_device(reply, practice):
    """Mark the browser that gets ``reply`` as ``practice``'s tablet (a signed cookie, no secret in it)."""
    reply.set_signed_cookie(
        DEVICE_COOKIE,
        str(practice.pk),
        salt=DEVICE_SALT,
        max_age=DEVICE_MAX_AGE,
        httponly=True,
        samesite="Strict",
        secure=settings.SESSION_COOKIE_SECURE,
    )


def unmark_device(reply):
    reply.delete_cookie(DEVICE_COOKIE, samesite="Strict")


def is_practice_device(request, practice):
    """Was this browser marked as ``practice``'s tablet (by one of its counselors)?"""
    value = request.get_signed_cookie(DEVICE_COOKIE, default=None, salt=DEVICE_SALT, max_age=DEVICE_MAX_AGE)
    return value is not None and value == str(practice.pk)
