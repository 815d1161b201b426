"""The outbox's two Celery tasks; beat runs ``dispatch`` every few seconds (settings.CELERY_BEAT_SCHEDULE).

Nothing imports this module: the dispatcher and beat name the tasks, so no workflow can call a
task directly (the import-linter contracts in pyproject.toml keep it so).
"""

from celery import shared_task
from django.db import DatabaseError

from . import outbox


@shared_task(ignore_result=True)
def dispatch():
    """Hand due outbox rows to the workers."""
    return outbox.dispatch().as_dict()


# A database that is restarting fails the batch as a whole: the same batch is tried again in a few
# seconds (its rows are still "handed out"), and after the queue lease the dispatcher hands them out anyway.
@shared_task(ignore_result=True, autoretry_for=(DatabaseError,), retry_backoff=2, retry_backoff_max=30, max_retries=8)
def run_jobs(job_ids):
    """Do a batch of outbox rows, over one mail connection."""
    return outbox.run(job_ids)
