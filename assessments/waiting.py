"""What makes an administration an item of its counselor's inbox (assessments/inbox.py), by kind.

Read by the inbox page (the items), and by the caseload rows (assessments/caseload.py), which keep
each couple's count so that the header's count reads one row per couple instead of every
administration of every couple. Safety alerts are counted apart (they are not per administration).
"""

from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Now

from .models import Assignment, InboxMark, MeasurementPlan, PlannedAdministration, Reminder

KIND = InboxMark.Kind


def not_marked(kind):
    return ~Exists(InboxMark.objects.filter(assignment=OuterRef("pk"), kind=kind))


def lasting():
    """{kind: Q over Assignment} of the kinds that stay until something is written: all but "overdue"."""
    failed = Reminder.objects.filter(response__assignment=OuterRef("pk"), status=Reminder.Status.FAILED)
    last_of_ended_plan = PlannedAdministration.objects.filter(
        assignment=OuterRef("pk"),
        plan__status=MeasurementPlan.Status.ENDED,
        plan__ended_reason=MeasurementPlan.Ended.COMPLETED,
        sequence=F("plan__made"),
    )
    return {
        KIND.NOT_REVIEWED: Q(status=Assignment.Status.COMPLETED) & Q(not_marked(KIND.NOT_REVIEWED)),
        KIND.UNDELIVERED: Q(status=Assignment.Status.OPEN) & Q(Exists(failed)) & Q(not_marked(KIND.UNDELIVERED)),
        KIND.PLAN_ENDED: Q(Exists(last_of_ended_plan)) & Q(not_marked(KIND.PLAN_ENDED)),
    }


def overdue_once_past_due():
    """An open administration not marked "overdue": an item once its due date has passed."""
    return Q(status=Assignment.Status.OPEN) & Q(not_marked(KIND.OVERDUE))


def conditions():
    """{kind: Q over Assignment} of the items still waiting now, in the inbox's order."""
    kinds = lasting()
    return {
        KIND.NOT_REVIEWED: kinds[KIND.NOT_REVIEWED],
        KIND.OVERDUE: overdue_once_past_due() & Q(due_at__lt=Now()),
        KIND.UNDELIVERED: kinds[KIND.UNDELIVERED],
        KIND.PLAN_ENDED: kinds[KIND.PLAN_ENDED],
    }
