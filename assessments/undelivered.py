"""Messages that could not be delivered, as the counselor sees them, and "Try again".

Every e-mail the site sends is an outbox row (practice/outbox.py). A row that failed for good (the
address was rejected, or every try over a day failed) is listed on the couple's page and in the
counselor's caseload, in the words the outbox recorded ("the mail server asked to try again later
(451)", "the disk the e-mail is written to is full"), with *Try again*: the row waits again, due
now, with its tries counted afresh. Mail the outbox is still retrying is listed on the couple's
page as "not delivered yet, trying again" (reminders in their panel, the rest here).
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import BigIntegerField, F, Q
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

from clients.models import Couple
from practice import outbox, prepared
from practice.models import Job

from . import caseload, reminders
from .models import Assignment, Reminder, SafetyAlert

MAIL_KINDS = ("partner_email", "counselor_notice", "safety_alert", "safety_escalation")
CASELOAD_DAYS = 30  # the caseload lists failures this recent; the couple's page lists them all
NOTICES = {"both_finished": 'Your "both finished" e-mail', "overdue": 'Your "past its due date" e-mail'}


@dataclass
class Undelivered:
    job: Job
    couple_id: int
    counselor_id: int
    couple_label: str
    what: str  # "Invitation to Taylor"

    @property
    def failed(self):
        return self.job.status == Job.Status.FAILED

    @property
    def text(self):
        if self.failed:
            return f"{self.what} could not be delivered: {self.job.last_error}"
        return f"{self.what} not delivered yet, trying again: {self.job.last_error}"


def describe(jobs):
    """Undelivered entries for mail rows, each with its couple and in words. Three queries at most."""
    jobs = [job for job in jobs if job.kind in MAIL_KINDS]
    by_kind = {}
    for job in jobs:
        by_kind.setdefault(job.kind, []).append(job)
    found = []
    if "partner_email" in by_kind:
        rows = Reminder.objects.filter(job__in=by_kind["partner_email"]).select_related(
            "job", "response__partner", "response__assignment__couple"
        )
        for reminder in rows:
            couple = reminder.response.assignment.couple
            what = f"{reminder.get_kind_display()} to {reminder.response.partner.name}"
            found.append(Undelivered(reminder.job, couple.pk, couple.counselor_id, couple.label, what))
    notices = by_kind.get("counselor_notice", [])
    if notices:
        assignments = Assignment.objects.select_related("couple").in_bulk(
            [job.payload.get("assignment") for job in notices]
        )
        for job in notices:
            assignment = assignments.get(job.payload.get("assignment"))
            if assignment is not None:
                couple = assignment.couple
                what = NOTICES.get(job.payload.get("what"), "Your e-mail")
                found.append(Undelivered(job, couple.pk, couple.counselor_id, couple.label, what))
    alerts_jobs = by_kind.get("safety_alert", []) + by_kind.get("safety_escalation", [])
    if alerts_jobs:
        alerts = SafetyAlert.objects.select_related("response__assignment__couple").in_bulk(
            [job.payload.get("alert") for job in alerts_jobs]
        )
        for job in alerts_jobs:
            alert = alerts.get(job.payload.get("alert"))
            if alert is not None:
                couple = alert.response.assignment.couple
                what = (
                    "Your safety alert e-mail (the alert itself is on the comparison page)"
                    if job.kind == "safety_alert"
                    else "The e-mail telling the practice's admins that an alert waits"
                )
                found.append(Undelivered(job, couple.pk, couple.counselor_id, couple.label, what))
    return sorted(found, key=lambda u: u.job.finished_at or u.job.due_at, reverse=True)


def _about(couples):
    """The mail rows about ``couples`` (a queryset): their partners' e-mails, the counselor's notices
    on their administrations, their safety alerts' e-mails. Subqueries, not lists: one query."""
    assignment_ids = Assignment.objects.filter(couple__in=couples).values("pk")
    alert_ids = SafetyAlert.objects.filter(response__assignment__couple__in=couples).values("pk")
    return Job.objects.alias(
        assignment_ref=Cast(KT("payload__assignment"), BigIntegerField()),
        alert_ref=Cast(KT("payload__alert"), BigIntegerField()),
    ).filter(
        Q(kind="partner_email", reminder__response__assignment__couple__in=couples)
        | Q(kind="counselor_notice", assignment_ref__in=assignment_ids)
        | Q(kind__in=["safety_alert", "safety_escalation"], alert_ref__in=alert_ids)
    )


def _couple_jobs(couple, practice):
    failed = Q(status=Job.Status.FAILED)
    retrying = Q(status__in=[Job.Status.PENDING, Job.Status.QUEUED], attempts__gt=0) & ~Q(last_error="")
    jobs = _about(Couple.objects.filter(pk=couple)).filter(failed | (retrying & ~Q(kind="partner_email")))
    return jobs.filter(practice=practice)


# Asked on every view of a couple's page: compiled once per process, not per view (practice/prepared.py).
_COUPLE_JOBS = prepared.Query(_couple_jobs, "couple", "practice")


def for_couple(couple):
    """Every mail of the couple that failed, and every non-reminder mail still being retried."""
    return describe(_COUPLE_JOBS.all(couple=couple.pk, practice=couple.practice_id))


def _counselor_jobs(counselor, practice):
    # Newest first, so "the last CASELOAD_DAYS" can be cut off after the read (for_counselor): the
    # failures of those days are the newest rows, and the cut-off stays out of the compiled query.
    return (
        _about(Couple.objects.filter(practice=practice, counselor=counselor))
        .filter(practice=practice, status=Job.Status.FAILED)
        .order_by(F("finished_at").desc(nulls_last=True), "-pk")[:COUNSELOR_LIMIT]
    )


COUNSELOR_LIMIT = 200
# Asked on every view of the caseload: compiled once per process (practice/prepared.py).
_COUNSELOR_JOBS = prepared.Query(_counselor_jobs, "counselor", "practice")


def for_counselor(user, practice, *, now=None):
    """The counselor's couples' mail that failed in the last CASELOAD_DAYS, newest first.

    Chosen in the database, so other counselors' failures never crowd out this counselor's.
    """
    since = (now or timezone.now()) - timedelta(days=CASELOAD_DAYS)
    jobs = _COUNSELOR_JOBS.all(counselor=user.pk, practice=practice.pk)
    return describe([job for job in jobs if job.finished_at is not None and job.finished_at > since])


def retry(job, *, now=None):
    """Try a failed message again: its row waits again, due now, tries counted afresh. Returns False
    when it was not failed any more (a double click, or another tab already retried it)."""
    now = now or timezone.now()
    with transaction.atomic():
        if not outbox.retry(job.pk, now=now):
            return False
        if job.kind == "partner_email":
            Reminder.objects.filter(job=job, status=Reminder.Status.FAILED).update(
                status=Reminder.Status.CLAIMED, claimed_at=now, last_error=""
            )
            caseload.refresh(*reminders.couples_of(job))
    return True
