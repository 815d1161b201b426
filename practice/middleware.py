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
            return self.get_response(request)
        finally:
            timezone.deactivate()
