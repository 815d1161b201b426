"""Every kind of background work the assessments app asks for, in one place: the outbox handlers.

Workflows write the rows (practice.outbox.enqueue, in their own transaction); the dispatcher hands
them to a worker, which calls the handler registered here for the row's kind. Each handler takes
ids from the row and re-checks the world before acting, so a late or repeated run is harmless.

| kind               | written by                          | does                                     |
|--------------------|-------------------------------------|------------------------------------------|
| partner_email      | assign, resend, remind now, sweep   | an invitation or reminder to one partner |
| counselor_notice   | assign (overdue), submit (both)     | "both finished" / "past its due date"     |
| safety_alert       | the answers that raise an alert     | the counselor's alert e-mail             |
| safety_escalation  | the same, due after the practice's  | tells the admins an alert still waits    |
|                    | escalation time                     |                                          |
| partner_notice     | release of a summary or of results  | "your counselor shared something" to one |
|                    |                                     | partner, through their own link          |
| export             | a large export                      | writes the file                          |
| plan_administration| plans.sweep, on a plan's day        | one assignment, both partners invited    |
| counselor_digest   | digest.sweep, on Monday morning     | the counselor's weekly counts            |
| comparison_report  | submit (both finished)              | stores the administration's comparison   |
| comparison_pdf     | comparison_report, once it stored   | lays out and stores the report's PDF     |
"""

from datetime import datetime, timedelta

from practice import outbox

from . import comparison, digest, emails, export_jobs, pdf, plans, reminders
from .models import Response, SafetyAlert


# atomic=False: the reminder's one write after the send goes with the job's "done" (outbox.finish).
@outbox.handler("partner_email", channel="mail", on_failure=reminders.failed, atomic=False)
def partner_email(job, now):
    reminders.deliver(job, now=now)


@outbox.handler("comparison_report")
def comparison_report(job, now):
    """Store the comparison of an administration both partners just finished (it never changes after)."""
    assignment = job.payload["assignment"]
    if comparison.store_report(assignment):
        # A job of its own: a PDF takes a second or more, and its failure must not undo the report.
        outbox.enqueue(
            "comparison_pdf", f"comparison_pdf:{assignment}", payload={"assignment": assignment}, practice=job.practice
        )


@outbox.handler("comparison_pdf", max_attempts=3)
def comparison_pdf(job, now):
    """Lay out the report's PDF ahead of the counselor's first download."""
    pdf.prepare(job.payload["assignment"])


@outbox.handler("counselor_notice", channel="mail")
def counselor_notice(job, now):
    reminders.notify_counselor(job.payload["assignment"], job.payload["what"], now=now)


def _alert(job):
    return (
        SafetyAlert.objects.select_related(
            "response__assignment__couple__counselor", "response__assignment__couple__practice"
        )
        .filter(pk=job.payload["alert"])
        .first()
    )


@outbox.handler("safety_alert", channel="mail")
def safety_alert(job, now):
    """The counselor's e-mail. Marked delivered only once the mail server has taken it."""
    alert = _alert(job)
    if alert is None:
        return  # the couple was deleted
    emails.send_counselor_safety_alert(alert)
    SafetyAlert.objects.filter(pk=alert.pk, notified_at__isnull=True).update(notified_at=now)


@outbox.handler("safety_escalation", channel="mail")
def safety_escalation(job, now):
    """Once, if the alert is still unacknowledged when its time comes: the practice's admins hear of it."""
    alert = _alert(job)
    if alert is None or alert.acknowledged_at is not None or alert.escalated_at is not None:
        return
    emails.send_admin_alert_waiting(alert, alert.response.assignment.couple.practice.alert_escalation_hours)
    SafetyAlert.objects.filter(pk=alert.pk, escalated_at__isnull=True).update(escalated_at=now)


@outbox.handler("partner_notice", channel="mail")
def partner_notice(job, now):
    """ "Your counselor shared something with you", only while the partner's link still opens."""
    response = (
        Response.objects.select_related("partner", "assignment__couple__practice", "assignment__couple__counselor")
        .filter(pk=job.payload["response"])
        .first()
    )
    if response is None or response.link_problem(now):
        return  # the couple was deleted, or the link has closed: the counselor gives a new one first
    token = response.live_token()
    if token is None:
        return  # the counselor ended this partner's access
    emails.send_partner_shared(response, token, job.payload["sequence"])


@outbox.handler("export", lease=timedelta(hours=2), max_attempts=3)
def export(job, now):
    export_jobs.build(job.payload["export_job"])


@outbox.handler("plan_administration")
def plan_administration(job, now):
    """A measurement plan's administration whose day came: created once (plans.administer re-checks)."""
    plans.administer(job.payload["planned"], at=datetime.fromisoformat(job.payload["at"]), now=now)


@outbox.handler("counselor_digest", channel="mail")
def counselor_digest(job, now):
    digest.deliver(job.payload["user"], job.payload["week"], now=now)
