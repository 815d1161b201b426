"""The counselor's weekly digest: optional, on the practice's Monday morning, once a week, counts only."""

import datetime
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from assessments import digest
from assessments.models import SafetyAlert, Score
from practice.forms import PracticeSettingsForm
from practice.models import AuditEvent, Job
from tests.clients.factories import finished_assignment
from tests.conftest import client_for, deliver, make_assignment, make_couple, page_text


@pytest.fixture
def practice(world):
    world.practice.time_zone = "Europe/Berlin"
    world.practice.weekly_digest = True
    world.practice.save()
    return world.practice


def next_monday(practice, hour=8, minute=5):
    today = timezone.localdate(timezone=practice.tz)
    monday = today + timedelta(days=(7 - today.weekday()) % 7 or 7)
    return datetime.datetime.combine(monday, datetime.time(hour, minute), tzinfo=practice.tz)


def digests():
    return Job.objects.filter(kind="counselor_digest")


def test_nothing_is_sent_while_the_practice_has_not_turned_it_on(world, practice):
    practice.weekly_digest = False
    practice.save()
    assert digest.sweep(now=next_monday(practice)) == []
    assert not digests().exists()


def test_one_digest_per_counselor_on_the_local_monday_morning_and_only_once_that_week(world, practice):
    make_couple(world.colleague, label="Sam & Alex", a=("Sam", "sam@example.com"), b=("Alex", "alex@example.com"))
    monday = next_monday(practice)
    assert digest.sweep(now=monday - timedelta(minutes=10)) == []  # 07:55 in Berlin
    assert digest.sweep(now=monday - timedelta(days=1)) == []  # Sunday
    digest.sweep(now=monday)
    digest.sweep(now=monday)  # a second beat at the same moment
    digest.sweep(now=monday + timedelta(hours=3))  # a restart later that morning
    digest.sweep(now=monday + timedelta(days=1))  # Tuesday: not Monday, nothing
    assert sorted(j.payload["user"] for j in digests()) == sorted([world.owner.pk, world.colleague.pk])
    deliver(now=monday + timedelta(hours=3))
    deliver(now=monday + timedelta(hours=4))
    assert sorted(m.to[0] for m in mail.outbox) == sorted([world.owner.email, world.colleague.email])
    digest.sweep(now=monday + timedelta(weeks=1))
    assert digests().count() == 4  # the next week's, one each


def test_a_counselor_without_active_couples_gets_none(world, practice):
    world.couple.status = world.couple.Status.ARCHIVED
    world.couple.save()
    assert digest.sweep(now=next_monday(practice)) == []


def test_the_digest_counts_and_never_names_a_couple_or_a_score(world, practice):
    world.couple.label = "Zephyrine & Quillon"
    world.couple.save()
    _finished, responses, _ = finished_assignment(world.couple)
    SafetyAlert.objects.create(response=responses["B"], level="urgent")
    other = make_couple(
        world.owner, label="Marigold Household", a=("Odalys", "o@example.com"), b=("Bram", "b@example.com")
    )
    make_assignment(other, days=-2)  # overdue
    monday = next_monday(practice)
    deliver(now=monday)  # the invitations and notices first
    mail.outbox.clear()
    digest.sweep(now=monday)
    deliver(now=monday)
    (message,) = mail.outbox
    text = message.body
    (html, _type) = message.alternatives[0]
    assert "Safety alerts waiting to be seen: 1" in text and "Both finished, not yet reviewed: 1" in text
    assert "Overdue: 1" in text and "Active couples: 2" in text
    forbidden = ["Zephyrine", "Quillon", "Marigold", "Household", "Taylor", "Jordan", "Odalys", "Bram", "urgent"]
    for score in Score.objects.all():
        for value in [score.connection_index, *score.domains.values()]:
            if value is not None and value >= 10:
                forbidden += [f"{value:.0f}", f"{value:.1f}"]
    for body in (text, html, message.subject):
        for word in forbidden:
            assert word not in body, word


def test_the_admin_turns_the_digest_on_in_the_practice_settings(world):
    assert not world.practice.weekly_digest  # off by default
    page = client_for(world.admin).get(reverse("practice:settings"))
    assert "Send each counselor a weekly digest" in page_text(page)
    settings_now = PracticeSettingsForm(instance=world.practice).initial
    data = {k: v for k, v in settings_now.items() if v is not None and not isinstance(v, bool | dict)}
    data.update(
        {
            "reminder_after_days": "2, 5",
            "reminder_before_due_days": "1",
            "quiet_hours_start": "00:00",
            "quiet_hours_end": "00:00",
            "weekly_digest": "on",
        }
    )
    reply = client_for(world.admin).post(reverse("practice:settings"), data)
    assert reply.status_code == 302, page_text(reply)
    world.practice.refresh_from_db()
    assert world.practice.weekly_digest
    assert "weekly_digest" in AuditEvent.objects.get(action="practice.settings").detail["changed"]
