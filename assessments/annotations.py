"""What the assessments app adds to staff pages: facts on the signed-in user on every page
(practice/auth.py), and the names of couples, administrations and responses in the audit log
(practice/models.py, AUDIT_TARGETS)."""

from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce, Now
from django.urls import reverse
from django.utils import dateformat

from clients.models import Couple
from practice.auth import annotate_user
from practice.models import AuditTarget, audit_target

from .models import Assignment, CaseloadRow, ExportJob, Response, SafetyAlert


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
    """How many other inbox items wait for the person (assessments/inbox.py), beside the open alerts.

    Summed from the person's active couples' caseload rows, which keep each couple's count
    (``inbox_waiting``, and the due date after which its open administration is overdue): one
    indexed read of one row per couple. Counting the administrations themselves here read every
    administration of the person's couples on every staff page (4.4 ms for 500 couples).
    """
    rows = (
        CaseloadRow.objects.filter(counselor=OuterRef("pk"), couple_status=Couple.Status.ACTIVE)
        .order_by()
        .values("counselor")
        .annotate(total=Sum("inbox_waiting") + Count("pk", filter=Q(inbox_overdue_after__lt=Now())))
        .values("total")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), 0)


# --- The audit log's names ----------------------------------------------------------------------
# A couple's name links to its couple page only for its own counselor (the one person who may open
# it); everyone else reads the name. Nothing here reads an answer, a score or a safety level.


def _couple_target(couple, viewer, text=None):
    url = reverse("assessments:couple", args=[couple.pk]) if couple.counselor_id == viewer.pk else ""
    return AuditTarget(text or couple.label, url)


@audit_target("couple")
def _name_couples(ids, *, practice, viewer):
    couples = Couple.objects.filter(pk__in=ids, practice=practice).only("label", "counselor_id")
    return {couple.pk: _couple_target(couple, viewer) for couple in couples}


@audit_target("assignment")
def _name_assignments(ids, *, practice, viewer):
    assignments = (
        Assignment.objects.filter(pk__in=ids, couple__practice=practice)
        .select_related("couple")
        .only("assigned_at", "couple__label", "couple__counselor_id")
    )
    named = {}
    for assignment in assignments:
        sent = dateformat.format(assignment.assigned_at.astimezone(practice.tz), "j M Y")
        named[assignment.pk] = _couple_target(assignment.couple, viewer, f"{assignment.couple.label} · sent {sent}")
    return named


@audit_target("response")
def _name_responses(ids, *, practice, viewer):
    responses = (
        Response.objects.filter(pk__in=ids, assignment__couple__practice=practice)
        .select_related("partner", "assignment__couple")
        .only(
            "partner__first_name",
            "partner__last_name",
            "assignment__couple__label",
            "assignment__couple__counselor_id",
        )
    )
    named = {}
    for response in responses:
        couple = response.assignment.couple
        named[response.pk] = _couple_target(couple, viewer, f"{response.partner.full_name} ({couple.label})")
    return named


@audit_target("safetyalert")
def _name_safety_alerts(ids, *, practice, viewer):
    # That a couple had a safety alert is clinical: only its counselor reads whose it was.
    alerts = (
        SafetyAlert.objects.filter(pk__in=ids, response__assignment__couple__practice=practice)
        .select_related("response__assignment__couple")
        .only("response__assignment__couple__label", "response__assignment__couple__counselor_id")
    )
    named = {}
    for alert in alerts:
        couple = alert.response.assignment.couple
        if couple.counselor_id == viewer.pk:
            named[alert.pk] = _couple_target(couple, viewer, f"Safety alert · {couple.label}")
        else:
            named[alert.pk] = AuditTarget("A safety alert on another counselor's couple")
    return named


@audit_target("exportjob")
def _name_export_jobs(ids, *, practice, viewer):
    jobs = ExportJob.objects.filter(pk__in=ids, practice=practice).only("kind", "format")
    return {job.pk: AuditTarget(f"Export of {job.kind} ({job.format.upper()})") for job in jobs}
