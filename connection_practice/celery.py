import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connection_practice.settings")

app = Celery("connection_practice")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
