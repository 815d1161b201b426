"""The counselor's inbox: each kind of item, in order, cleared as documented, and its count in the header."""

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from assessments import caseload, inbox, plans
from assessments.models import Assignment, InboxMark, Reminder, SafetyAlert
from practice import outbox
from practice.models import AuditEvent
from tests.clients.factories import finished_assignment
from tests.conftest import client_for, make_couple, page_text


def inbox_text(user):
    reply = client_for(user).get(reverse("assessments:inbox"))
    assert reply.status_code == 200
    return page_text(reply)


def header_count(user):
    text = page_text(client_for(user).get(reverse("assessments:caseload")))
    start = text.index('href="/inbox/"')
    segment = text[start : text.index("</a>", start)]
    digits = "".join(ch for ch in segment.split("inbox-count")[-1] if ch.isdigit()) if "inbox-count" in segment else ""
    return int(digits or 0)


def overdue_couple(world, label="Overdue & Late"):
    couple = make_couple(world.owner, label=label, a=("Ana", "ana@example.com"), b=("Ben", "ben@example.com"))
    assignment, _, _ = finished_assignment(couple)
    Assignment.objects.filter(pk=assignment.pk).update(
        status=Assignment.Status.OPEN, completed_at=None, due_at=timezone.now() - timedelta(days=1)
    )
    caseload.refresh(couple.pk)  # written past the workflows: the couple's caseload row (and count) follows
    return couple, assignment


def fail_reminders(assignment):
    """The assignment's e-mails failed for good (as the outbox's giving up writes it)."""
    Reminder.objects.filter(response__assignment=assignment).update(status=Reminder.Status.FAILED)
    caseload.refresh(assignment.couple_id)


def test_each_kind_is_listed_safety_first_and_counted_in_the_header(world):
    finished, responses, _ = finished_assignment(world.couple)
    SafetyAlert.objects.create(response=responses["B"], level="concern")
    late_couple, late = overdue_couple(world)
    fail_reminders(late)
    text = inbox_text(world.owner)
    labels = ("Safety alert", "Both finished — not yet reviewed", "Overdue", "Could not be delivered")
    order = [text.index(f"<strong>{label}</strong>") for label in labels]
    assert order == sorted(order)
    assert "Taylor & Jordan" in text and "Overdue & Late" in text
    # One alert, one not reviewed, one overdue, one undelivered.
    assert header_count(world.owner) == 4
    assert "Nothing waits for you" in inbox_text(world.colleague) and header_count(world.colleague) == 0


def test_opening_the_comparison_marks_not_yet_reviewed_done(world):
    finished, responses, _ = finished_assignment(world.couple)
    assert "<strong>Both finished — not yet reviewed</strong>" in inbox_text(world.owner)
    client_for(world.owner).get(reverse("assessments:comparison", args=[world.couple.pk, finished.pk]))
    assert "<strong>Both finished — not yet reviewed</strong>" not in inbox_text(world.owner)
    assert header_count(world.owner) == 0
    assert AuditEvent.objects.filter(action="inbox.reviewed").count() == 1
    client_for(world.owner).get(reverse("assessments:comparison", args=[world.couple.pk, finished.pk]))
    assert AuditEvent.objects.filter(action="inbox.reviewed").count() == 1  # once


def test_acknowledge_and_dismiss_clear_an_item_and_are_audited(world):
    late_couple, late = overdue_couple(world)
    fail_reminders(late)
    client = client_for(world.owner)
    acked = client.post(reverse("assessments:inbox_mark", args=[late.pk, "overdue"]), {"how": "acknowledged"})
    assert acked.status_code == 302
    client.post(reverse("assessments:inbox_mark", args=[late.pk, "undelivered"]), {"how": "dismissed"})
    text = inbox_text(world.owner)
    assert "Overdue & Late" not in text and header_count(world.owner) == 0
    assert set(InboxMark.objects.values_list("kind", "how")) == {
        ("overdue", "acknowledged"),
        ("undelivered", "dismissed"),
    }
    assert {"inbox.acknowledged", "inbox.dismissed"} <= set(AuditEvent.objects.values_list("action", flat=True))


def test_bad_input_and_other_peoples_items_are_refused_and_change_nothing(world):
    late_couple, late = overdue_couple(world)
    client = client_for(world.owner)
    assert (
        client.post(reverse("assessments:inbox_mark", args=[late.pk, "sideways"]), {"how": "dismissed"}).status_code
        == 404
    )
    bad = client.post(reverse("assessments:inbox_mark", args=[late.pk, "overdue"]), {"how": "shred"}, follow=True)
    assert bad.status_code == 200 and "Please choose Acknowledge or Dismiss" in page_text(bad)
    for user in (world.colleague, world.outsider):
        reply = client_for(user).post(
            reverse("assessments:inbox_mark", args=[late.pk, "overdue"]), {"how": "dismissed"}
        )
        assert reply.status_code == 404
    assert not InboxMark.objects.exists()


def test_an_archived_couple_leaves_the_inbox(world):
    late_couple, late = overdue_couple(world)
    late_couple.status = late_couple.Status.ARCHIVED
    late_couple.save()
    assert "Overdue & Late" not in inbox_text(world.owner) and header_count(world.owner) == 0


def test_the_header_count_costs_no_query_of_its_own(world):
    client = client_for(world.owner)
    url = reverse("assessments:caseload")
    client.get(url)
    with CaptureQueriesContext(connection) as calm:
        client.get(url)
    overdue_couple(world)
    finished_assignment(world.couple)
    with CaptureQueriesContext(connection) as busy:
        client.get(url)
    assert header_count(world.owner) == 2
    # The caseload lists one more couple; the inbox count itself adds nothing to the query count.
    assert len(busy) == len(calm)


def ended_plan(world):
    """A plan of one administration that has run its course (its one assessment went out)."""
    start = timezone.localdate(timezone=world.practice.tz)
    plan = plans.create(
        couple=world.couple, every_weeks=2, administrations=1, start_on=start, due_days=7, by=world.owner
    )
    now = plans.due_moment(world.practice, start) + timedelta(minutes=1)
    plans.sweep(now=now)
    outbox.run_now(now=now)
    plan.refresh_from_db()
    assert plan.ended_reason == "completed"
    return plan, Assignment.objects.get(couple=world.couple)


def test_a_plan_that_ran_its_course_is_in_the_inbox_until_acknowledged(world):
    plan, last = ended_plan(world)
    text = inbox_text(world.owner)
    assert "<strong>Plan ended</strong>" in text and "Taylor & Jordan" in text
    assert header_count(world.owner) == 1
    assert "Nothing waits for you" in inbox_text(world.colleague)
    reply = client_for(world.owner).post(
        reverse("assessments:inbox_mark", args=[last.pk, "plan_ended"]), {"how": "acknowledged"}
    )
    assert reply.status_code == 302
    assert "<strong>Plan ended</strong>" not in inbox_text(world.owner) and header_count(world.owner) == 0
    event = AuditEvent.objects.get(action="inbox.acknowledged")
    assert event.detail == {"kind": "plan_ended"}
    # The kinds' order is the inbox's: "plan ended" comes after "could not be delivered".
    assert list(inbox.conditions())[-2:] == ["undelivered", "plan_ended"]


def test_a_plan_the_counselor_ended_puts_nothing_in_the_inbox(world):
    start = timezone.localdate(timezone=world.practice.tz) + timedelta(days=3)
    plan = plans.create(
        couple=world.couple, every_weeks=2, administrations=4, start_on=start, due_days=7, by=world.owner
    )
    plans.end(plan)
    assert "Plan ended" not in inbox_text(world.owner) and header_count(world.owner) == 0


def test_a_dismissed_plan_ended_item_stays_dismissed(world):
    _plan, last = ended_plan(world)
    client_for(world.owner).post(reverse("assessments:inbox_mark", args=[last.pk, "plan_ended"]), {"how": "dismissed"})
    assert "<strong>Plan ended</strong>" not in inbox_text(world.owner)
    assert InboxMark.objects.get(assignment=last).how == "dismissed"
