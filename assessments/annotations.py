"""What the assessments app adds to the signed-in user on every staff page (practice/auth.py)."""

from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce

from clients.models import Couple
from practice.auth import annotate_user

from . import inbox
from .models import Assignment, SafetyAlert


@annotate_user("open_alerts")
def open_alerts():
    """How many safety alerts on the person's own couples wait to be marked as seen (the header's badge)."""
    waiting = (
        SafetyAlert.objects.filter(response__assignment__couple__counselor=OuterRef("pk"), acknowledged_at__isnull=True)
        .order_by()
        .values("response__assignment__couple__counselor")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(waiting, output_field=IntegerField()), 0)


@annotate_user("inbox_waiting")
def inbox_waiting():
    """How many other inbox items wait for the person (assessments/inbox.py), beside the open alerts."""
    total = None
    for condition in inbox.conditions().values():
        waiting = (
            Assignment.objects.filter(condition, couple__counselor=OuterRef("pk"), couple__status=Couple.Status.ACTIVE)
            .order_by()
            .values("couple__counselor")
            .annotate(n=Count("pk"))
            .values("n")
        )
        count = Coalesce(Subquery(waiting, output_field=IntegerField()), 0)
        total = count if total is None else total + count
    return total
