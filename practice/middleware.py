import time

from django.conf import settings
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.utils import timezone

from .models import Membership


class PracticeMiddleware:
    """Set request.practice and request.membership, and show times in the practice's zone.

    Staff sessions also end SESSION_ABSOLUTE_SECONDS after sign-in whatever the activity.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.practice = None
        request.membership = None
        user = request.user
        if user.is_authenticated:
            started = request.session.get("signed_in_at")
            if started is None:
                request.session["signed_in_at"] = int(time.time())
            elif time.time() - started > settings.SESSION_ABSOLUTE_SECONDS:
                logout(request)
                return redirect(settings.LOGIN_URL)
            try:
                membership = user.membership  # fetched with the user by practice.auth.EmailBackend
            except Membership.DoesNotExist:
                membership = None
            if membership is not None:
                request.membership = membership
                request.practice = membership.practice
                timezone.activate(membership.practice.tz)
        try:
            response = self.get_response(request)
        finally:
            timezone.deactivate()
        touch(request)
        return response


def touch(request):
    """Slide the session's idle expiry, writing the session at most once a minute.

    Saving on every request (SESSION_SAVE_EVERY_REQUEST) costs a write per page; a write per
    SESSION_TOUCH_SECONDS keeps the idle limit within a minute of exact at a fraction of that.
    """
    session = getattr(request, "session", None)
    if session is None or session.session_key is None or session.is_empty():
        return
    now = int(timezone.now().timestamp())
    if now - session.get("_touched", 0) >= settings.SESSION_TOUCH_SECONDS:
        session["_touched"] = now
