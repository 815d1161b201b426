"""Reminder planning: rows in the database, claimed once and sent once by Celery tasks."""

from datetime import timedelta

from django.utils import timezone

from .models import Reminder


def plan(response, *, now=None):
    """Create the reminder rows for one response from its practice's reminder policy."""
    now = now or timezone.now()
    assignment = response.assignment
    policy = assignment.couple.practice.reminder_policy or {}
    rows = [(Reminder.Kind.INVITATION, now)]
    kinds = [Reminder.Kind.REMINDER_1, Reminder.Kind.REMINDER_2]
    for kind, days in zip(kinds, policy.get("after_days", [2, 5]), strict=False):
        rows.append((kind, now + timedelta(days=days)))
    before = policy.get("before_due_days", 1)
    if before:
        rows.append((Reminder.Kind.BEFORE_DUE, assignment.due_at - timedelta(days=before)))
    if policy.get("overdue_notice", True):
        rows.append((Reminder.Kind.OVERDUE, assignment.due_at + timedelta(hours=1)))
    # A reminder that would land before the invitation or after the due date is pointless.
    Reminder.objects.bulk_create(
        Reminder(response=response, kind=kind, due_at=at)
        for kind, at in rows
        if kind in (Reminder.Kind.INVITATION, Reminder.Kind.OVERDUE) or now < at < assignment.due_at
    )


def enqueue_due_on_commit(assignment):
    """Send the invitations as soon as the transaction that created them commits."""
    from .tasks import send_reminder

    ids = list(
        Reminder.objects.filter(response__assignment=assignment, kind=Reminder.Kind.INVITATION).values_list(
            "id", flat=True
        )
    )
    for reminder_id in ids:
        send_reminder.delay_on_commit(reminder_id)
