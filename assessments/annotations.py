"""What the assessments app adds to staff pages: facts on the signed-in user on every page
(practice/auth.py), and the names of couples, administrations and responses in the audit log
(practice/models.py, AUDIT_TARGETS)."""

from django.db.models import Count, IntegerField, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import dateformat

from clients.models import Couple
from practice.auth import annotate_user
from practice.models import AuditTarget, audit_target

from . import inbox
from .models import Assignment, ExportJob, Response, SafetyAlert


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

    Counted couple by couple (the person's active couples, then each one's administrations by its
    index), not by joining every administration to the person's couples: the planner cannot know
    how many couples the person has when it plans this once for everyone, and the join it chose
    read every administration of the database on every page (5 to 8 ms at 10,000 couples, for a
    counselor with five couples as much as for one with five hundred).
    """
    counts = [Count("pk", filter=condition) for condition in inbox.conditions().values()]
    per_couple = (
        Assignment.objects.filter(couple=OuterRef("pk"))
        .order_by()
        .values("couple")
        .annotate(n=sum(counts[1:], counts[0]))
        .values("n")
    )
    couples = (
        Couple.objects.filter(counselor=OuterRef("pk"), status=Couple.Status.ACTIVE)
        .order_by()
        .annotate(waiting=Subquery(per_couple, output_field=IntegerField()))
        .values("counselor")
        .annotate(total=Sum("waiting"))
        .values("total")
    )
    return Coalesce(Subquery(couples, output_field=IntegerField()), 0)


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
