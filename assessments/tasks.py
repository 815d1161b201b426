"""Celery tasks. Each takes ids, re-checks the world, and calls plain functions.

Reminders are database rows; the beat sweep claims due rows with a conditional update and
enqueues one send per row, so no task is ever scheduled far in the future.
"""

import logging

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from . import emails
from .models import Assignment, Reminder

log = logging.getLogger(__name__)


@shared_task
def sweep_reminders():
    """Claim due reminders and enqueue one send task each. Safe to run in parallel."""
    now = timezone.now()
    claimed = []
    for reminder_id in Reminder.objects.due(now).values_list("id", flat=True)[:500]:
        # The conditional update is the claim: of two racing sweeps only one changes the row.
        if Reminder.objects.filter(id=reminder_id, status=Reminder.Status.SCHEDULED).update(
            status=Reminder.Status.CLAIMED, claimed_at=now
        ):
            claimed.append(reminder_id)
    for reminder_id in claimed:
        send_reminder.delay(reminder_id)
    return len(claimed)


@shared_task
def send_reminder(reminder_id):
    """Send one reminder at most once."""
    now = timezone.now()
    # Invitations are enqueued straight from assign(); claim them here the same way.
    Reminder.objects.filter(id=reminder_id, status=Reminder.Status.SCHEDULED, due_at__lte=now).update(
        status=Reminder.Status.CLAIMED, claimed_at=now
    )
    with transaction.atomic():
        reminder = (
            Reminder.objects.select_for_update(of=("self",))
            .select_related("response__partner", "response__assignment__couple__practice")
            .filter(id=reminder_id, status=Reminder.Status.CLAIMED)
            .first()
        )
        if reminder is None:
            return "not claimed"
        response = reminder.response
        assignment = response.assignment
        if (
            assignment.status != Assignment.Status.OPEN
            or response.submitted_at is not None
            or assignment.couple.reminders_paused
            or (reminder.kind != Reminder.Kind.INVITATION and response.partner.reminders_unsubscribed_at)
        ):
            reminder.status = Reminder.Status.SKIPPED
            reminder.save(update_fields=["status"])
            return "skipped"
        token = response.live_token()
        if token is None:
            reminder.status = Reminder.Status.SKIPPED
            reminder.last_error = "The link was revoked."
            reminder.save(update_fields=["status", "last_error"])
            return "skipped"
        reminder.attempts += 1
        emails.send_partner_reminder(reminder, token)
        reminder.status = Reminder.Status.SENT
        reminder.sent_at = timezone.now()
        reminder.save(update_fields=["status", "sent_at", "attempts"])
    return "sent"


@shared_task
def notify_both_finished(assignment_id):
    """Tell the counselor, once, that both partners have finished."""
    now = timezone.now()
    if not Assignment.objects.filter(pk=assignment_id, both_finished_notified_at__isnull=True).update(
        both_finished_notified_at=now
    ):
        return "already sent"
    assignment = Assignment.objects.select_related("couple__counselor", "couple__practice").get(pk=assignment_id)
    emails.send_counselor_both_finished(assignment)
    return "sent"


# --- Safety alerts


@shared_task
def notify_safety_alert(response_id):
    """Tell the counselor, once, that a response needs their attention. Says nothing more."""
    from .models import Response

    if not Response.objects.filter(pk=response_id, safety_alert_sent_at__isnull=True).update(
        safety_alert_sent_at=timezone.now()
    ):
        return "already sent"
    response = Response.objects.select_related("assignment__couple__counselor", "assignment__couple__practice").get(
        pk=response_id
    )
    emails.send_counselor_safety_alert(response.assignment.couple)
    return "sent"
