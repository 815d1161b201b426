"""Redis stopped, restarted empty, or hung, around the moments that matter most: a safety answer
and a submit, an assignment and a resend. Real worker and beat on a Redis of the test's own."""

import time

import pytest
from django.urls import reverse
from django.utils import timezone

from assessments.models import Assignment, Reminder, Response, SafetyAlert
from practice.models import AuditEvent, Job
from tests.assessments.answering_helpers import answer_everything, save, section_codes, start
from tests.conftest import client_for, make_assignment, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.fault]


def test_redis_stopped_around_a_safety_answer_and_a_submit_the_alert_arrives_once_when_it_returns(
    quiet_free, redis_server, site_processes
):
    world = quiet_free
    site = site_processes().start()
    assignment, tokens = make_assignment(world.couple)
    # The partners answer from the invitations' links (a partner who finished first gets none).
    invitations = Reminder.objects.filter(response__assignment=assignment, kind=Reminder.Kind.INVITATION)
    assert wait_for(lambda: invitations.filter(status=Reminder.Status.SENT).count() == 2, 60), site.output()
    a, b = start(tokens["A"]), start(tokens["B"])
    answer_everything(a, value=4, safety=1)
    answer_everything(b, value=3, safety=1)
    assert b.post(reverse("assessments:submit", args=[b.response_id])).status_code == 302

    redis_server.stop()
    safety = section_codes()[-1][0]
    started = time.monotonic()
    raised = save(a, safety, 3, 2)  # an urgent safety answer: support shown at once, the alert written
    submitted = a.post(reverse("assessments:submit", args=[a.response_id]))
    assert time.monotonic() - started < 2
    assert raised.status_code == 200 and "support" in raised.content.decode().lower()
    assert submitted.status_code == 302 and submitted["Location"].endswith("/results/")
    alert = SafetyAlert.objects.get(response_id=a.response_id)
    assert Response.objects.get(pk=a.response_id).submitted_at is not None
    assert AuditEvent.objects.filter(action="response.submit", object_id=str(a.response_id)).exists()
    assert Assignment.objects.get(pk=assignment.pk).status == Assignment.Status.COMPLETED
    time.sleep(3)  # Redis stays away a while; the rows wait
    assert alert.notified_at is None and Job.objects.get(kind="safety_alert").status == Job.Status.PENDING

    redis_server.start()  # back on the same port, empty: every message it held is gone
    back = timezone.now()
    alert_id = f"<safety-alert-{alert.pk}-urgent@"
    assert wait_for(
        lambda: (
            any(m.startswith(alert_id) for m in site.message_ids())
            and Assignment.objects.filter(pk=assignment.pk, both_finished_notified_at__isnull=False).exists()
        ),
        60,
    ), site.output()
    alert.refresh_from_db()
    assert (alert.notified_at - back).total_seconds() < 60
    time.sleep(3)  # a duplicate would land now
    ids = site.message_ids()
    assert sum(m.startswith(alert_id) for m in ids) == 1
    assert sum("both" in m for m in ids) == 1, ids
    assert Job.objects.undelivered().filter(due_at__lte=timezone.now()).count() == 0


def timed(call):
    started = time.monotonic()
    reply = call()
    return reply, time.monotonic() - started


def test_redis_hung_assign_resend_and_a_safety_answer_answer_within_two_seconds_and_nothing_is_lost(
    quiet_free, redis_server, site_processes
):
    world = quiet_free
    site = site_processes().start()
    before = timezone.now() - timezone.timedelta(minutes=5)  # the first invitations went out a while ago
    assignment, tokens = make_assignment(world.couple, now=before)
    partner = start(tokens["A"])
    invitations = Reminder.objects.filter(kind=Reminder.Kind.INVITATION)
    assert wait_for(lambda: invitations.filter(status=Reminder.Status.SENT).count() == 2, 60), site.output()
    counselor = client_for(world.owner)
    counselor.get(reverse("assessments:caseload"))  # signed in and warmed up

    redis_server.pause()  # accepts connections, answers nothing
    try:
        due = (timezone.localdate() + timezone.timedelta(days=7)).isoformat()
        assigned, assign_took = timed(
            lambda: counselor.post(reverse("assessments:assign", args=[world.other.pk]), {"due_date": due})
        )
        response_a = assignment.responses.get(partner__position="A")
        resent, resend_took = timed(lambda: counselor.post(reverse("assessments:resend", args=[response_a.pk])))
        safety, safety_took = timed(lambda: save(partner, section_codes()[-1][0], 3, 1))
    finally:
        time.sleep(5)  # the hang goes on a while after the requests
        redis_server.resume()
    back = time.monotonic()
    print(f"hung Redis: assign {assign_took:.2f} s, resend {resend_took:.2f} s, safety autosave {safety_took:.2f} s")
    assert assigned.status_code == 302 and resent.status_code == 302 and safety.status_code == 200
    assert max(assign_took, resend_took, safety_took) < 2
    alert = SafetyAlert.objects.get(response_id=partner.response_id)
    new = Assignment.objects.get(couple=world.other)
    assert AuditEvent.objects.filter(action="assignment.create", object_id=str(new.pk)).exists()
    assert AuditEvent.objects.filter(action="response.invitation_resend", object_id=str(response_a.pk)).exists()

    # Redis answers again: the alert, the two new invitations and the resent one go out, once each.
    assert wait_for(lambda: invitations.filter(status=Reminder.Status.SENT).count() == 5, 60), site.output()
    alert_id = f"<safety-alert-{alert.pk}-urgent@"
    assert wait_for(lambda: any(m.startswith(alert_id) for m in site.message_ids()), 30), site.output()
    print(f"all delivered {time.monotonic() - back:.1f} s after Redis answered again")
    time.sleep(2)
    ids = site.message_ids()
    assert len(ids) == len(set(ids)) == 6, ids  # 2 first invitations, 3 new ones, 1 alert
