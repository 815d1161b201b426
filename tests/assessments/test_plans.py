"""Measurement plans: started from the couple page, each administration created once on its local day."""

import datetime
import re
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from assessments import plans
from assessments.models import Assignment, MeasurementPlan, PlannedAdministration, Reminder
from clients.models import Couple
from practice.models import AuditEvent, Job
from tests.conftest import client_for, deliver, make_user, page_text

TZ = "America/New_York"


@pytest.fixture
def practice(world):
    world.practice.time_zone = TZ
    world.practice.save()
    return world.practice


def local_today(practice):
    return timezone.localdate(timezone=practice.tz)


def moment(practice, day, hour=8, minute=1):
    return datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=practice.tz)


def post_plan(user, couple, **fields):
    data = {"every_weeks": "4", "administrations": "3", "start_on": "", "due_days": "7", **fields}
    return client_for(user).post(reverse("assessments:plan", args=[couple.pk]), data)


def start_plan(world, practice, start, **fields):
    reply = post_plan(world.owner, world.couple, start_on=start.isoformat(), **fields)
    assert reply.status_code == 302, page_text(reply)
    return MeasurementPlan.objects.get(couple=world.couple)


def words(reply):
    """The page's text without its tags, each run of spaces as one."""
    return " ".join(re.sub(r"<[^>]+>", " ", page_text(reply)).split())


def sweep_and_deliver(now):
    """What beat and a worker do at ``now``: the sweep writes, the outbox job makes the assignment."""
    written = plans.sweep(now=now)
    deliver(now=now)
    return written


def local_days(couple, practice):
    return [
        timezone.localtime(a.assigned_at, practice.tz).date()
        for a in Assignment.objects.filter(couple=couple).order_by("assigned_at")
    ]


def test_a_plan_of_three_every_four_weeks_makes_three_assignments_on_their_local_days(world, practice):
    start = local_today(practice) + timedelta(days=1)
    plan = start_plan(world, practice, start)
    days = [start + timedelta(weeks=4 * i) for i in range(3)]
    # The evening before (in New York) nothing is made, even though it is already the day in UTC.
    assert sweep_and_deliver(moment(practice, start - timedelta(days=1), hour=21)) == []
    assert sweep_and_deliver(moment(practice, start, hour=7, minute=59)) == []
    for day in days:
        now = moment(practice, day)
        assert len(sweep_and_deliver(now)) == 1
        assert sweep_and_deliver(now + timedelta(minutes=1)) == []  # the next beat
        assert sweep_and_deliver(now + timedelta(days=1)) == []  # a late sweep
    assert sweep_and_deliver(moment(practice, days[-1] + timedelta(weeks=4))) == []
    assert local_days(world.couple, practice) == days
    assert Reminder.objects.filter(response__assignment__couple=world.couple, kind="invitation").count() == 6
    plan.refresh_from_db()
    assert (plan.status, plan.ended_reason, plan.made) == ("ended", "completed", 3)
    # Each earlier administration, still open when the next one's day came, was superseded (cancelled).
    statuses = list(
        Assignment.objects.filter(couple=world.couple).order_by("assigned_at").values_list("status", flat=True)
    )
    assert statuses == ["cancelled", "cancelled", "open"]
    assert AuditEvent.objects.filter(action="assignment.superseded").count() == 2


def test_each_assignment_is_due_after_the_due_period_on_the_practice_clock(world, practice):
    start = local_today(practice) + timedelta(days=2)
    start_plan(world, practice, start, due_days="10")
    sweep_and_deliver(moment(practice, start))
    assignment = Assignment.objects.get(couple=world.couple)
    due = timezone.localtime(assignment.due_at, practice.tz)
    assert (due.date(), due.time()) == (start + timedelta(days=10), datetime.time(23, 59, 59))
    assert assignment.assigned_by == world.owner


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_the_same_moment_write_one_administration(world, practice):
    start = local_today(practice)
    start_plan(world, practice, start + timedelta(days=1))
    now = moment(practice, start + timedelta(days=1))
    barrier = threading.Barrier(2)
    results = []

    def run():
        try:
            barrier.wait()
            results.append(len(plans.sweep(now=now)))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0, 1]
    assert PlannedAdministration.objects.count() == 1
    assert Job.objects.filter(kind="plan_administration").count() == 1


def test_the_job_delivered_twice_makes_one_assignment(world, practice):
    start = local_today(practice) + timedelta(days=1)
    start_plan(world, practice, start)
    (planned,) = plans.sweep(now=moment(practice, start))
    assert plans.administer(planned.pk, now=moment(practice, start)) == "assigned"
    assert plans.administer(planned.pk, now=moment(practice, start)) == "gone"
    assert Assignment.objects.filter(couple=world.couple).count() == 1


def test_archiving_the_couple_stops_the_rest(world, practice):
    start = local_today(practice) + timedelta(days=1)
    plan = start_plan(world, practice, start)
    sweep_and_deliver(moment(practice, start))
    reply = client_for(world.owner).post(
        reverse("clients:couple_archive", args=[world.couple.pk]), {"action": "archive"}
    )
    assert reply.status_code == 302
    for weeks in (4, 8):
        sweep_and_deliver(moment(practice, start + timedelta(weeks=weeks)))
    assert Assignment.objects.filter(couple=world.couple).count() == 1
    plan.refresh_from_db()
    assert (plan.status, plan.ended_reason) == ("ended", "archived")
    # Bringing the couple back does not restart the old plan.
    client_for(world.owner).post(reverse("clients:couple_archive", args=[world.couple.pk]), {"action": "unarchive"})
    sweep_and_deliver(moment(practice, start + timedelta(weeks=12)))
    assert Assignment.objects.filter(couple=world.couple).count() == 1


def test_an_administration_whose_day_came_is_not_made_once_the_couple_is_archived(world, practice):
    start = local_today(practice) + timedelta(days=1)
    start_plan(world, practice, start)
    (planned,) = plans.sweep(now=moment(practice, start))
    Couple.objects.filter(pk=world.couple.pk).update(status=Couple.Status.ARCHIVED)
    deliver(now=moment(practice, start))
    planned.refresh_from_db()
    assert planned.assignment is None and planned.skipped_reason == "the couple was archived"
    assert not Assignment.objects.exists()


def test_pausing_skips_the_days_and_resuming_goes_on_from_the_next_day_on_the_rhythm(world, practice):
    start = local_today(practice) + timedelta(days=1)
    plan = start_plan(world, practice, start, every_weeks="2", administrations="", until_stopped="on")
    sweep_and_deliver(moment(practice, start))
    client = client_for(world.owner)
    client.post(reverse("assessments:plan_action", args=[world.couple.pk]), {"action": "pause"})
    paused_page = words(client.get(reverse("assessments:couple", args=[world.couple.pk])))
    assert "Paused" in paused_page and "· next" not in paused_page
    sweep_and_deliver(moment(practice, start + timedelta(weeks=2)))
    assert Assignment.objects.filter(couple=world.couple).count() == 1
    plans.set_paused(plan, False, now=moment(practice, start + timedelta(weeks=3)))
    plan.refresh_from_db()
    assert plan.next_on == start + timedelta(weeks=4)
    sweep_and_deliver(moment(practice, start + timedelta(weeks=4)))
    assert local_days(world.couple, practice) == [start, start + timedelta(weeks=4)]
    assert AuditEvent.objects.filter(action="plan.pause").count() == 1


def test_a_changed_rhythm_applies_from_the_next_administration(world, practice):
    start = local_today(practice) + timedelta(days=1)
    start_plan(world, practice, start)
    sweep_and_deliver(moment(practice, start))
    reply = post_plan(world.owner, world.couple, every_weeks="2", administrations="3")
    assert reply.status_code == 302, page_text(reply)
    plan = MeasurementPlan.objects.get(couple=world.couple)
    assert plan.next_on == start + timedelta(weeks=2)
    assert AuditEvent.objects.filter(action="plan.change").count() == 1


def test_ending_the_plan_stops_it_and_the_page_says_so(world, practice):
    start = local_today(practice) + timedelta(days=1)
    start_plan(world, practice, start)
    client = client_for(world.owner)
    client.post(reverse("assessments:plan_action", args=[world.couple.pk]), {"action": "end"})
    sweep_and_deliver(moment(practice, start))
    assert not Assignment.objects.exists()
    text = page_text(client.get(reverse("assessments:couple", args=[world.couple.pk])))
    assert "ended by the counselor" in text
    assert AuditEvent.objects.filter(action="plan.end").count() == 1


def test_a_transferred_couple_takes_its_plan_to_the_new_counselor(world, practice):
    start = local_today(practice) + timedelta(days=1)
    start_plan(world, practice, start)
    Couple.objects.filter(pk=world.couple.pk).update(counselor=world.colleague)
    sweep_and_deliver(moment(practice, start))
    assignment = Assignment.objects.get(couple=world.couple)
    assert assignment.assigned_by == world.colleague


def test_the_couple_page_shows_the_calendar(world, practice):
    start = local_today(practice) + timedelta(days=1)
    start_plan(world, practice, start)
    sweep_and_deliver(moment(practice, start))
    text = words(client_for(world.owner).get(reverse("assessments:couple", args=[world.couple.pk])))
    assert "Every 4 weeks" in text and "3 assessments" in text
    assert f"{start + timedelta(weeks=4):%-d %b %Y} · next" in text
    assert "2 still to come." in text


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"start_on": "2020-01-01"}, "can't be in the past"),
        ({"every_weeks": "0"}, "Please choose every 2, 4, 6 or 8 weeks."),
        ({"every_weeks": "3"}, "Please choose every 2, 4, 6 or 8 weeks."),
        ({"administrations": "53"}, "at most 52"),
        ({"administrations": "0"}, "at least 1"),
        ({"administrations": ""}, "or tick “Until stopped”"),
        ({"due_days": "40"}, "at most 28 days"),
        ({"start_on": "not a date"}, "Enter a valid date"),
    ],
)
def test_bad_input_is_a_form_error_and_nothing_is_created(world, practice, fields, error):
    fields = {"start_on": local_today(practice).isoformat(), **fields}
    reply = post_plan(world.owner, world.couple, **fields)
    assert reply.status_code == 400
    assert error in page_text(reply)
    assert not MeasurementPlan.objects.exists() and not AuditEvent.objects.filter(action__startswith="plan.").exists()


def test_a_tampered_couple_id_is_refused_and_nothing_is_created(world, practice):
    outsider_couple_counselor = make_user(world.other_practice, "third@elsewhere.example")
    start = local_today(practice).isoformat()
    for pk in (world.couple.pk + 1000, world.couple.pk):
        reply = post_plan(outsider_couple_counselor, world.couple.__class__(pk=pk), start_on=start)
        assert reply.status_code == 404
    reply = client_for(world.colleague).post(
        reverse("assessments:plan_action", args=[world.couple.pk]), {"action": "end"}
    )
    assert reply.status_code == 404
    assert not MeasurementPlan.objects.exists()


def test_a_second_plan_is_refused_while_one_is_live(world, practice):
    start = local_today(practice) + timedelta(days=1)
    plan = start_plan(world, practice, start)
    with pytest.raises(plans.PlanError):
        plans.create(couple=world.couple, every_weeks=2, administrations=1, start_on=start, due_days=3, by=world.owner)
    assert list(MeasurementPlan.objects.all()) == [plan]
