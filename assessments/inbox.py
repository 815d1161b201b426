"""The counselor's inbox: what needs them, safety first, each item until it is done.

Kinds, in the order shown: unacknowledged safety alerts (done by acknowledging the alert), then per
administration of the counselor's active couples "both finished — not yet reviewed" (done by opening
the comparison, or acknowledging/dismissing), "overdue" (an open administration past its due date),
"could not be delivered" (an open administration with an e-mail that failed for good) and "plan
ended" (the last administration of a measurement plan that ran its course: time to decide whether to
plan more; shown on that administration). An InboxMark ends an item. The same filters give the
header's count as subqueries of the query that loads the signed-in user
(assessments/annotations.py), so the count costs no query.
"""

from dataclasses import dataclass

from django.db import connection
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Now
from django.utils import timezone

from clients.models import Couple

from .models import Assignment, InboxMark, MeasurementPlan, PlannedAdministration, Reminder, SafetyAlert

KIND = InboxMark.Kind


def _not_marked(kind):
    return ~Exists(InboxMark.objects.filter(assignment=OuterRef("pk"), kind=kind))


def conditions():
    """{kind: Q over Assignment} of the items still waiting, by kind (safety alerts are separate)."""
    failed = Reminder.objects.filter(response__assignment=OuterRef("pk"), status=Reminder.Status.FAILED)
    open_ = Q(status=Assignment.Status.OPEN)
    last_of_ended_plan = PlannedAdministration.objects.filter(
        assignment=OuterRef("pk"),
        plan__status=MeasurementPlan.Status.ENDED,
        plan__ended_reason=MeasurementPlan.Ended.COMPLETED,
        sequence=F("plan__made"),
    )
    return {
        KIND.NOT_REVIEWED: Q(status=Assignment.Status.COMPLETED) & Q(_not_marked(KIND.NOT_REVIEWED)),
        KIND.OVERDUE: open_ & Q(due_at__lt=Now()) & Q(_not_marked(KIND.OVERDUE)),
        KIND.UNDELIVERED: open_ & Q(Exists(failed)) & Q(_not_marked(KIND.UNDELIVERED)),
        KIND.PLAN_ENDED: Q(Exists(last_of_ended_plan)) & Q(_not_marked(KIND.PLAN_ENDED)),
    }


def _active(assignments):
    return assignments.filter(couple__status=Couple.Status.ACTIVE)


@dataclass(frozen=True)
class Item:
    kind: str
    label: str
    assignment: Assignment | None = None
    alert: SafetyAlert | None = None


def items(user):
    """Everything in the counselor's inbox, safety alerts first, then by kind, oldest first."""
    alerts = (
        SafetyAlert.objects.for_counselor(user)
        .unacknowledged()
        .select_related("response__partner", "response__assignment__couple")
        .order_by("raised_at")
    )
    result = [Item("safety", "Safety alert", alert.response.assignment, alert) for alert in alerts]
    mine = _active(Assignment.objects.for_counselor(user)).select_related("couple")
    for kind, condition in conditions().items():
        for assignment in mine.filter(condition).order_by("due_at" if kind == KIND.OVERDUE else "assigned_at"):
            result.append(Item(kind, KIND(kind).label, assignment))
    return result


def mark(assignment, kind, how, *, by):
    """End one item. False when it was already done."""
    _, created = InboxMark.objects.get_or_create(assignment=assignment, kind=kind, defaults={"how": how, "by": by})
    return created


def mark_reviewed(assignment, *, by, now=None):
    """Opening the comparison ends "not yet reviewed": one statement, True only the first time."""
    marks = connection.ops.quote_name(InboxMark._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(now or timezone.now())
    # The only interpolation is the model's own quoted table name. PostgreSQL and SQLite (3.35+)
    # both speak ON CONFLICT DO NOTHING ... RETURNING.
    sql = (
        f"INSERT INTO {marks} (assignment_id, kind, how, by_id, at) VALUES (%s, %s, %s, %s, %s) "  # noqa: S608
        "ON CONFLICT (assignment_id, kind) DO NOTHING RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [assignment.pk, KIND.NOT_REVIEWED, InboxMark.How.REVIEWED, by.pk, now])
        return cursor.fetchone() is not None
