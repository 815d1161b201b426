"""The assessments app's periodic tasks; beat runs them every minute (settings.CELERY_BEAT_SCHEDULE).

Everything else this app does in the background is an outbox row (practice/outbox.py, and the
handlers in jobs.py). Nothing imports this module: beat names the task.
"""

from celery import shared_task

from . import digest, plans, reminders


@shared_task(ignore_result=True)
def sweep_reminders():
    """Queue the reminders that have fallen due. Safe to run in parallel."""
    result = reminders.sweep()
    return {"claimed": len(result.claimed), "skipped": result.skipped}


@shared_task(ignore_result=True)
def sweep_plans():
    """Write the measurement plans' administrations whose day has come. Safe to run in parallel."""
    return {"written": len(plans.sweep())}


@shared_task(ignore_result=True)
def weekly_digests():
    """Queue the counselors' weekly digests on each practice's Monday morning (once per counselor and week)."""
    return {"queued": len(digest.sweep())}
