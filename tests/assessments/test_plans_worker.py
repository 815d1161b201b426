"""Measurement plans through a real Celery worker on the real broker, with the clock moved forward.

The test is beat: at each planned day's moment (a fake clock, passed as ``now=``) two beats sweep
and dispatch at the same instant; the worker makes the administration and sends both invitations,
and the e-mails it actually wrote are counted.
"""

import datetime
import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from assessments import plans
from assessments.models import Assignment, MeasurementPlan, Reminder
from clients.models import Couple
from practice import outbox
from practice.models import Job
from tests.conftest import wait_for

pytestmark = pytest.mark.worker

PARTNERS = ("taylor@example.com", "jordan@example.com")


def moment(practice, day):
    return datetime.datetime.combine(day, datetime.time(8, 1), tzinfo=practice.tz)


def recipients(worker):
    found = Counter()
    for path in worker.mails():
        for line in path.read_text().splitlines():
            if line.startswith("To: "):
                found[line[4:].strip()] += 1
    return found


def idle():
    """No outbox row is handed out or running (so a dispatch with a moved clock takes nothing back)."""
    return not Job.objects.filter(status__in=[Job.Status.QUEUED, Job.Status.RUNNING]).exists()


def two_beats(now):
    """Two beats at the same instant, each sweeping the plans and dispatching."""
    barrier = threading.Barrier(2)
    written = []

    def beat():
        try:
            barrier.wait()
            written.extend(plans.sweep(now=now))
            outbox.dispatch(now=now)
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return written


def day_of(now, worker, expected_assignments, couple):
    """Everything that happens on one planned day, until its invitations are sent."""
    written = two_beats(now)
    made = Assignment.objects.filter(couple=couple)
    assert wait_for(lambda: made.count() == expected_assignments and idle(), timeout=60), worker.output()[-3000:]
    outbox.dispatch(now=now)  # the invitations, due at the day's moment
    invitations = Reminder.objects.filter(response__assignment__couple=couple, kind=Reminder.Kind.INVITATION)
    sent = invitations.filter(status=Reminder.Status.SENT)
    assert wait_for(lambda: sent.count() == 2 * expected_assignments and idle(), timeout=60), worker.output()[-3000:]
    # A restart or a late beat the next day writes nothing more.
    assert plans.sweep(now=now + timedelta(minutes=1)) == []
    assert plans.sweep(now=now + timedelta(hours=20)) == []
    return written


@pytest.fixture
def setup(transactional_db, world):
    world.practice.time_zone = "Australia/Sydney"  # far from UTC: the local day is not the server's
    world.practice.save()
    start = timezone.localdate(timezone=world.practice.tz) + timedelta(days=1)
    plan = plans.create(
        couple=world.couple, every_weeks=4, administrations=3, start_on=start, due_days=7, by=world.owner
    )
    return world, plan, start


def test_a_plan_of_three_every_four_weeks_makes_three_assignments_and_six_invitations_once(
    setup, celery_worker_process
):
    world, plan, start = setup
    worker, practice = celery_worker_process, world.practice
    days = [start + timedelta(weeks=4 * i) for i in range(3)]
    for n, day in enumerate(days, start=1):
        written = day_of(moment(practice, day), worker, n, world.couple)
        assert len(written) == 1  # of the two beats, one wrote the day's administration
    assert plans.sweep(now=moment(practice, days[-1] + timedelta(weeks=4))) == []
    assignments = list(Assignment.objects.filter(couple=world.couple).order_by("assigned_at"))
    assert [timezone.localtime(a.assigned_at, practice.tz).date() for a in assignments] == days
    assert recipients(worker) & Counter(dict.fromkeys(PARTNERS, 99)) == Counter(dict.fromkeys(PARTNERS, 3))
    plan.refresh_from_db()
    assert (plan.status, plan.ended_reason) == ("ended", "completed")


def test_archiving_the_couple_stops_the_rest_of_the_plan(setup, celery_worker_process):
    world, plan, start = setup
    worker, practice = celery_worker_process, world.practice
    day_of(moment(practice, start), worker, 1, world.couple)
    Couple.objects.filter(pk=world.couple.pk).update(status=Couple.Status.ARCHIVED)
    for weeks in (4, 8):
        now = moment(practice, start + timedelta(weeks=weeks))
        assert two_beats(now) == []
        assert wait_for(idle, timeout=30)
    assert Assignment.objects.filter(couple=world.couple).count() == 1
    assert recipients(worker) & Counter(dict.fromkeys(PARTNERS, 99)) == Counter(dict.fromkeys(PARTNERS, 1))
    assert MeasurementPlan.objects.get(pk=plan.pk).ended_reason == "archived"
