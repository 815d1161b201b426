import os
import sys

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connection_practice.settings")

app = Celery("connection_practice")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def command(*args):
    """The command line of a Celery program of this site (worker, beat) with ``args``: one spelling
    for ``run_all``, ``bench`` and the tests that start real workers."""
    return [sys.executable, "-m", "celery", "-A", "connection_practice", *args]
