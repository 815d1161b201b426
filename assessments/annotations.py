"""What the assessments app adds to the signed-in user on every staff page (practice/auth.py)."""

from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce

from practice.auth import annotate_user

from .models import SafetyAlert


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
