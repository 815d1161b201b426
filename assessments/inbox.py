"""The counselor's inbox: what needs them, safety first, each item until it is done.

Kinds, in the order shown: unacknowledged safety alerts (done by acknowledging the alert), then per
administration of the counselor's active couples "both finished — not yet reviewed" (done by opening
the comparison, or acknowledging/dismissing), "overdue" (an open administration past its due date),
"could not be delivered" (an open administration with an e-mail that failed for good) and "plan
ended" (the last administration of a measurement plan that ran its course: time to decide whether to
plan more; shown on that administration). An InboxMark ends an item. The conditions are
assessments/waiting.py's. The header's count is a subquery of the query that loads the signed-in
user (assessments/annotations.py), so it costs no query: it sums the counts that each couple's
caseload row keeps, which every mark here refreshes.
"""

from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from clients.models import Couple

from . import caseload
from .models import Assignment, InboxMark, SafetyAlert
from .waiting import KIND, conditions


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
    if created:
        caseload.refresh(assignment.couple_id)
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
        marked = cursor.fetchone() is not None
    if marked:
        caseload.refresh(assignment.couple_id)
    return marked
