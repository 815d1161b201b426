"""The readiness report behind /readyz: can this site do its work right now?"""

from celery import current_app
from django.conf import settings
from django.db import connection

from . import outbox


def _database():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # a readiness check reports every failure, it never raises
        return f"unavailable ({type(exc).__name__})"


def _broker():
    try:
        with current_app.connection_for_read(
            connect_timeout=1, transport_options={"socket_timeout": 1, "socket_connect_timeout": 1}
        ) as conn:
            conn.ensure_connection(max_retries=1, timeout=1)
        return "ok"
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})"


def check():
    """(report, ready). Ready when the database and broker answer and no due work waits too long."""
    report = {"database": _database(), "broker": _broker()}
    if report["database"] == "ok":
        report["outbox"] = outbox.health()
    delay = report.get("outbox", {}).get("oldest_due_seconds", 0)
    ready = report["database"] == "ok" and report["broker"] == "ok" and delay <= settings.READY_MAX_DELAY_SECONDS
    report["ready"] = ready
    return report, ready
