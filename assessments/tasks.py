"""Celery tasks. Each takes ids, re-checks the world, and calls plain functions.

Reminders are database rows; the beat sweep claims due rows with a conditional update and
enqueues one send per row, so no task is ever scheduled far in the future: the longest
countdown anywhere is ``reminders.MAX_COUNTDOWN`` (four minutes). Sends are idempotent first;
``acks_late`` and ``reject_on_worker_lost`` (settings) then make a killed worker's task redone.
"""

import logging

from celery import shared_task
from django.utils import timezone

from . import emails, reminders

log = logging.getLogger(__name__)


@shared_task
def sweep_reminders():
    """Claim due reminders and enqueue one send task each. Safe to run in parallel."""
    result = reminders.sweep()
    return {"claimed": len(result.claimed), "skipped": result.skipped, "released": result.released}


@shared_task(bind=True, max_retries=None, time_limit=reminders.send_time_limit())
def send_reminder(self, reminder_id):
    """Send one reminder at most once per take; retry mail errors with backoff and jitter."""
    outcome = reminders.send(reminder_id)
    if outcome.retry_in is not None:
        # "busy": another sender holds the row; look again when its lease ends. "retry": a
        # transient mail error. Both stay far below five minutes.
        raise self.retry(countdown=min(outcome.retry_in, reminders.MAX_COUNTDOWN))
    return outcome.status


def _notify(task, assignment_id, what):
    try:
        return reminders.notify_counselor(assignment_id, what)
    except Exception as exc:
        permanent, words = reminders.classify(exc)
        log.warning("Counselor notice %s for assignment %s failed: %s", what, assignment_id, words)
        if permanent or task.request.retries >= reminders.MAX_ATTEMPTS - 1:
            return "failed"
        raise task.retry(countdown=reminders.backoff(task.request.retries + 1)) from exc


@shared_task(bind=True, max_retries=reminders.MAX_ATTEMPTS)
def notify_counselor(self, assignment_id, what):
    """The counselor's "both finished" or "overdue" e-mail, once per assignment."""
    return _notify(self, assignment_id, what)


@shared_task(bind=True, max_retries=reminders.MAX_ATTEMPTS)
def notify_both_finished(self, assignment_id):
    """Tell the counselor, once, that both partners have finished (enqueued by submit())."""
    return _notify(self, assignment_id, "both_finished")


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


from .export_jobs import *  # noqa: E402,F401,F403
