"""What the counselor and the partner do with reminders: Remind now, pause, stop reminders, settings."""

from datetime import datetime, timedelta

import pytest
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from assessments import comparison, reminders
from assessments.models import Reminder
from assessments.workflows import submit
from practice.models import AuditEvent, Job
from tests.conftest import client_for, make_assignment, page_text

pytestmark = pytest.mark.smoke


def response_of(assignment, position):
    return assignment.responses.select_related("partner").get(partner__position=position)


def remind_url(response):
    return reverse("assessments:remind_now", args=[response.pk])


def pause_url(couple):
    return reverse("assessments:pause_reminders", args=[couple.pk])


def invited_earlier(couple):
    """An administration whose invitations went out two hours ago, so "Remind now" is offered."""
    return make_assignment(couple, now=timezone.now() - timedelta(hours=2))


def manual_rows(response):
    return Reminder.objects.filter(response=response, kind=Reminder.Kind.MANUAL)


# --- Remind now -------------------------------------------------------------------------


def test_remind_now_waits_an_hour_after_the_invitation_and_a_post_before_then_is_refused_in_words(world):
    assignment, _ = make_assignment(world.couple)
    taylor = response_of(assignment, "A")
    client = client_for(world.owner)
    page = page_text(client.get(reverse("assessments:couple", args=[world.couple.pk])))
    assert "Remind Taylor now" not in page and "Remind Jordan now" not in page
    assert "Taylor was sent a message less than an hour ago. You can remind Taylor from" in page
    # A form kept open from before (or a hand-made POST) is refused, readably, and nothing is queued.
    answer = client.post(remind_url(taylor), follow=True)
    assert answer.status_code == 200 and "Taylor was sent a message less than an hour ago" in page_text(answer)
    htmx = client.post(remind_url(taylor), HTTP_HX_REQUEST="true")
    assert htmx.status_code == 409 and "less than an hour ago" in page_text(htmx)
    assert not manual_rows(taylor).exists()


def test_the_hour_that_ends_after_midnight_is_said_with_its_day(world):
    """At 23:30 local time "from 00:30" would read as this morning: the day is named."""
    tz = world.practice.tz
    late = datetime(2026, 3, 10, 23, 30, tzinfo=tz)
    assignment, _ = make_assignment(world.couple, now=late)
    taylor = response_of(assignment, "A")
    words = reminders.remind_refusal(taylor, None, late + timedelta(minutes=5), last_message_at=late)
    assert words.endswith("You can remind Taylor from Wed 11 Mar, 00:30."), words
    evening = late - timedelta(hours=3)
    earlier = reminders.remind_refusal(taylor, None, evening, last_message_at=evening)
    assert earlier.endswith("You can remind Taylor from 21:30."), earlier


def test_remind_now_is_offered_once_the_last_message_is_an_hour_old(world):
    now = timezone.now()
    assignment, _ = make_assignment(world.couple, now=now - timedelta(minutes=59))
    taylor = response_of(assignment, "A")
    assert reminders.remind_refusal(taylor, None, now, reminders.last_message(taylor.partner, now))
    later = now + timedelta(minutes=1)
    assert reminders.remind_refusal(taylor, None, later, reminders.last_message(taylor.partner, later)) == ""
    # A message that failed never reached them: it does not hold the counselor back.
    Reminder.objects.filter(response=taylor).update(status=Reminder.Status.FAILED)
    assert reminders.last_message(taylor.partner, now) is None


def test_counselor_reminds_a_partner_now_and_it_is_queued_in_the_outbox_and_audited(world):
    assignment, _ = invited_earlier(world.couple)
    taylor = response_of(assignment, "A")
    answer = client_for(world.owner).post(remind_url(taylor), follow=True)
    assert answer.status_code == 200
    text = page_text(answer)
    assert "Reminder to Taylor" in text
    (manual,) = manual_rows(taylor)
    assert manual.job.kind == "partner_email" and manual.job.status == Job.Status.PENDING
    assert AuditEvent.objects.filter(action="reminder.remind_now", object_id=str(taylor.pk)).count() == 1


def test_a_second_remind_now_within_twelve_hours_is_refused_with_a_clear_message(world):
    assignment, _ = invited_earlier(world.couple)
    taylor = response_of(assignment, "A")
    client = client_for(world.owner)
    client.post(remind_url(taylor))
    answer = client.post(remind_url(taylor), follow=True)
    assert "Taylor was reminded less than 12 hours ago" in page_text(answer)
    assert manual_rows(taylor).count() == 1


def test_remind_now_for_a_partner_who_finished_says_so(world):
    assignment, _ = make_assignment(world.couple)
    taylor = response_of(assignment, "A")
    submit(taylor)
    answer = client_for(world.owner).post(remind_url(taylor), follow=True)
    assert "Taylor has already finished." in page_text(answer)
    assert not manual_rows(taylor).exists()


def test_remind_now_over_htmx_returns_the_panel_with_the_notice(world):
    assignment, _ = invited_earlier(world.couple)
    taylor = response_of(assignment, "A")
    client = client_for(world.owner)
    answer = client.post(remind_url(taylor), HTTP_HX_REQUEST="true")
    assert answer.status_code == 200
    text = page_text(answer)
    assert f'id="reminders-{assignment.pk}"' in text and "Reminder to Taylor" in text
    assert "Taylor was reminded less than 12 hours ago." in text  # the button is gone for now
    again = client.post(remind_url(taylor), HTTP_HX_REQUEST="true")
    assert again.status_code == 409 and "less than 12 hours ago" in page_text(again)


@pytest.mark.parametrize("who", ["colleague", "outsider", "outsider_admin", "admin"])
def test_only_the_couples_counselor_can_remind_a_partner(world, who):
    assignment, _ = make_assignment(world.couple)
    taylor = response_of(assignment, "A")
    answer = client_for(getattr(world, who)).post(remind_url(taylor))
    assert answer.status_code == 404
    assert not manual_rows(taylor).exists()


def test_remind_now_needs_a_post_and_a_sign_in(world):
    assignment, _ = make_assignment(world.couple)
    taylor = response_of(assignment, "A")
    assert client_for(world.owner).get(remind_url(taylor)).status_code == 405
    anonymous = Client().post(remind_url(taylor))
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert not manual_rows(taylor).exists()


# --- Pause ------------------------------------------------------------------------------


def test_counselor_pauses_and_resumes_a_couples_reminders_and_both_are_audited(world):
    client = client_for(world.owner)
    answer = client.post(pause_url(world.couple), {"paused": "1"}, follow=True)
    assert "Reminders are paused for this couple." in page_text(answer)
    world.couple.refresh_from_db()
    assert world.couple.reminders_paused
    client.post(pause_url(world.couple), {"paused": "1"})  # a double click changes nothing more
    client.post(pause_url(world.couple), {"paused": "0"})
    world.couple.refresh_from_db()
    assert not world.couple.reminders_paused
    actions = list(AuditEvent.objects.filter(object_id=str(world.couple.pk)).values_list("action", flat=True))
    assert sorted(a for a in actions if "reminders" in a) == ["couple.reminders_paused", "couple.reminders_resumed"]


def test_pausing_over_htmx_redraws_the_panel_with_a_resume_button(world):
    assignment, _ = make_assignment(world.couple)
    answer = client_for(world.owner).post(
        pause_url(world.couple), {"paused": "1", "assignment": assignment.pk}, HTTP_HX_REQUEST="true"
    )
    text = page_text(answer)
    assert "Resume reminders" in text and "Reminders are paused for this couple" in text


@pytest.mark.parametrize("who", ["colleague", "outsider", "outsider_admin"])
def test_nobody_but_the_counselor_can_pause_a_couples_reminders(world, who):
    answer = client_for(getattr(world, who)).post(pause_url(world.couple), {"paused": "1"})
    assert answer.status_code == 404
    world.couple.refresh_from_db()
    assert not world.couple.reminders_paused


# --- Stop reminders (the partner's link) ------------------------------------------------------


def test_a_partner_stops_reminders_with_a_post_after_a_get_that_changes_nothing(world):
    partner = world.couple.partners.get(position="B")
    url = reverse("assessments:unsubscribe", args=[reminders.unsubscribe_token(partner)])
    client = Client()
    page = client.get(url)
    assert page.status_code == 200 and "Stop reminders?" in page_text(page)
    partner.refresh_from_db()
    assert partner.reminders_unsubscribed_at is None  # a mail scanner's GET does nothing
    done = client.post(url, follow=True)
    assert "Reminders stopped" in page_text(done) and "every answer you already gave is kept" in page_text(done)
    partner.refresh_from_db()
    assert partner.reminders_unsubscribed_at is not None
    client.post(url)  # again: recorded once
    events = AuditEvent.objects.filter(action="partner.reminders_unsubscribed", object_id=str(partner.pk))
    assert events.count() == 1 and events.get().practice == world.practice


def test_a_tampered_or_foreign_stop_link_is_a_readable_404(world):
    token = reminders.unsubscribe_token(world.couple.partners.get(position="A"))
    for bad in (token[:-3] + "abc", "x"):
        answer = Client().post(reverse("assessments:unsubscribe", args=[bad]))
        assert answer.status_code == 404
        assert "We don't recognise this link" in page_text(answer)
    assert not world.couple.partners.filter(reminders_unsubscribed_at__isnull=False).exists()


def test_the_counselor_sees_that_a_partner_stopped_reminders_and_cannot_remind_them(world):
    assignment, _ = make_assignment(world.couple)
    partner = world.couple.partners.get(position="B")
    Client().post(reverse("assessments:unsubscribe", args=[reminders.unsubscribe_token(partner)]))
    text = render_panel(world, assignment)
    assert "Jordan unsubscribed from reminders on" in text
    answer = client_for(world.owner).post(remind_url(response_of(assignment, "B")), follow=True)
    assert "Jordan unsubscribed from reminders, so none can be sent." in page_text(answer)


# --- The panel ------------------------------------------------------------------------------


def loaded(couple, assignment):
    """The administration as the couple page loads it, with its reminders panels."""
    (one,) = comparison.administrations(couple, pk=assignment.pk)
    one.couple = couple
    one.reminder_panels = reminders.panels([one])[one.pk]
    return one


def render_panel(world, assignment, **extra):
    request = RequestFactory().get("/")
    request.user = world.owner
    context = {"assignment": loaded(world.couple, assignment), **extra}
    return render_to_string("assessments/_reminders_panel.html", context, request=request)


def test_the_panel_shows_per_partner_what_was_sent_what_is_scheduled_and_failures_in_words(world):
    now = timezone.now()
    assignment, _ = make_assignment(world.couple, now=now - timedelta(days=3))
    a, b = response_of(assignment, "A"), response_of(assignment, "B")
    Reminder.objects.filter(response=a, kind="invitation").update(status="sent", sent_at=now - timedelta(days=3))
    Reminder.objects.filter(response=b, kind="invitation").update(status="failed", last_error="address rejected")
    submit(a)
    text = render_panel(world, assignment)
    # The reason (and "Try again") is the couple page's undelivered card's to say; the panel only marks it.
    assert "Invitation not delivered (see above)" in text and "address rejected" not in text
    assert "Invitation sent" in text
    assert "Second reminder scheduled" in text  # Jordan's, still ahead
    assert "Second reminder" not in text.split("Jordan")[0]  # Taylor's, due after finishing: not listed
    assert "finished" in text
    assert text.count("Remind Jordan now") == 1 and "Remind Taylor now" not in text
    assert "Pause reminders" in text


def test_the_panels_of_every_administration_cost_one_query(world, django_assert_num_queries):
    assignment, _ = make_assignment(world.couple)
    (fresh,) = comparison.administrations(world.couple, pk=assignment.pk)
    fresh.couple = world.couple
    # 1. every reminder of the administrations (with its outbox row); responses and partners came loaded.
    with django_assert_num_queries(1):
        panels = reminders.panels([fresh])
    assert [p.partner.first_name for p in panels[fresh.pk]] == ["Taylor", "Jordan"]


def test_the_panel_of_an_overdue_assessment_says_so(world):
    assignment, _ = make_assignment(world.couple, now=timezone.now() - timedelta(days=9), days=7)
    assert "Past its due date" in render_panel(world, assignment)
