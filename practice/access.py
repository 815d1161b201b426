"""Who may do what: the small helpers every staff view goes through.

Permission decisions live here and in views, never only in templates.
"""

from functools import wraps

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from .models import Membership, Practice, User


class PracticeRequest(HttpRequest):
    """A request as the middleware leaves it: ``practice`` and ``membership`` are None for anyone
    who is not a signed-in member of a practice (a partner, an operator, nobody)."""

    htmx: HtmxDetails
    practice: Practice | None
    membership: Membership | None


class StaffRequest(PracticeRequest):
    """A request that ``member_required`` or ``admin_required`` let through: a signed-in member."""

    user: User
    practice: Practice
    membership: Membership


def member_required(view):
    """A signed-in user with a membership of a practice (any role)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.membership is None:
            raise PermissionDenied("This page is for members of a practice.")
        return view(request, *args, **kwargs)

    return wrapper


def admin_required(view):
    """A practice admin of the request's practice."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.membership is None or not request.membership.is_admin:
            raise PermissionDenied("Only a practice admin can open this page.")
        return view(request, *args, **kwargs)

    return wrapper
