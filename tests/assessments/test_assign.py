import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assessments.models import Answer, Assignment, Reminder, Response
from practice.models import AuditEvent, Job
from tests.assessments.answering_helpers import answer_everything, open_link, save, start
from tests.conftest import client_for, deliver, make_assignment, page_text, wait_for


def due_in(days, practice):
    return (timezone.localdate(timezone=practice.tz) + timedelta(days=days)).isoformat()


def assign_url(world):
    return reverse("assessments:assign", args=[world.couple.pk])


# --- Assign -----------------------------------------------------------------------------------


def test_the_couple_page_offers_to_assign_with_the_practice_default_due_date(world):
    world.practice.default_due_days = 10
    world.practice.save()
    page = page_text(client_for(world.owner).get(reverse("assessments:couple", args=[world.couple.pk])))
    assert "Assign and send invitations" in page
    assert f'value="{due_in(10, world.practice)}"' in page


@pytest.mark.smoke
def test_the_counselor_assigns_and_each_partner_gets_a_response_with_a_private_link(world):
    client = client_for(world.owner)
    reply = client.post(assign_url(world), {"due_date": due_in(7, world.practice)})
    assert reply["Location"] == reverse("assessments:couple", args=[world.couple.pk])
    assignment = Assignment.objects.get(couple=world.couple)
    assert assignment.status == Assignment.Status.OPEN and assignment.assigned_by == world.owner
    due = timezone.localtime(assignment.due_at, world.practice.tz)
    assert due.date().isoformat() == due_in(7, world.practice) and (due.hour, due.minute) == (23, 59)
    responses = list(assignment.responses.all())
    assert len(responses) == 2
    assert all(r.links.filter(revoked_at__isnull=True).count() == 1 for r in responses)
    assert Reminder.objects.filter(response__assignment=assignment, kind=Reminder.Kind.INVITATION).count() == 2
    assert AuditEvent.objects.filter(action="assignment.create", object_id=str(assignment.pk)).exists()
    page = page_text(client.get(reply["Location"]))
    assert "Invitations are on their way to Taylor and Jordan" in page
    assert "Resend invitation" in page and "Cancel this assessment" in page


@pytest.mark.parametrize(
    ("days", "message"),
    [(-1, "The due date can't be in the past."), (91, "Please choose a due date within 90 days.")],
)
def test_a_due_date_in_the_past_or_too_far_ahead_is_refused(world, days, message):
    reply = client_for(world.owner).post(assign_url(world), {"due_date": due_in(days, world.practice)})
    assert reply.status_code == 400
    assert message in page_text(reply)
    assert not Assignment.objects.exists()


def test_a_couple_with_an_open_assessment_cannot_be_assigned_another(world):
    make_assignment(world.couple)
    reply = client_for(world.owner).post(assign_url(world), {"due_date": due_in(7, world.practice)})
    assert reply.status_code == 400
    assert "This couple already has an open assessment. Cancel it first" in page_text(reply)
    assert Assignment.objects.count() == 1


@pytest.mark.parametrize("who", ["colleague", "admin", "outsider", "outsider_admin"])
def test_only_the_couples_counselor_can_assign_cancel_resend_or_reissue(world, who):
    client = client_for(getattr(world, who))
    assignment, _ = make_assignment(world.couple)
    response = assignment.responses.first()
    assert client.get(assign_url(world)).status_code == 404
    assert client.post(assign_url(world), {"due_date": due_in(7, world.practice)}).status_code == 404
    assert client.post(reverse("assessments:cancel", args=[assignment.pk])).status_code == 404
    assert client.post(reverse("assessments:resend", args=[response.pk])).status_code == 404
    assert client.post(reverse("assessments:reissue", args=[response.pk])).status_code == 404
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.OPEN
    assert Reminder.objects.filter(response=response, kind=Reminder.Kind.INVITATION).count() == 1
    assert response.links.count() == 1


def test_signed_out_visitors_are_sent_to_sign_in(world):
    reply = Client().get(assign_url(world))
    assert reply.status_code == 302 and "/accounts/login/" in reply["Location"]


def test_counselor_actions_only_accept_posts(world):
    assignment, _ = make_assignment(world.couple)
    client = client_for(world.owner)
    assert client.get(reverse("assessments:cancel", args=[assignment.pk])).status_code == 405
    assert client.get(reverse("assessments:reissue", args=[assignment.responses.first().pk])).status_code == 405


# --- Cancel, resend, reissue ------------------------------------------------------------------


@pytest.mark.smoke
def test_cancelling_stops_the_links_and_reminders_and_keeps_the_answers(world):
    assignment, tokens = make_assignment(world.couple)
    partner = start(tokens["A"])
    save(partner, "COM1", 4, 1)
    client = client_for(world.owner)
    client.post(reverse("assessments:cancel", args=[assignment.pk]))
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.CANCELLED and assignment.cancelled_at
    assert not Reminder.objects.filter(response__assignment=assignment, status=Reminder.Status.SCHEDULED).exists()
    assert AuditEvent.objects.filter(action="assignment.cancel").count() == 1
    _, reply = open_link(tokens["A"])
    assert reply.status_code == 410 and "This link no longer opens" in page_text(reply)
    assert Answer.objects.filter(response__assignment=assignment).count() == 1
    again = client.post(reverse("assessments:cancel", args=[assignment.pk]), follow=True)
    assert "no longer open, so nothing changed" in page_text(again)
    # Now a new assessment can be assigned.
    assert client.post(assign_url(world), {"due_date": due_in(7, world.practice)}).status_code == 302


def test_resending_plans_one_more_invitation_and_a_double_click_sends_it_once(world):
    assignment, _ = make_assignment(world.couple)
    response = assignment.responses.get(partner__position="B")
    Reminder.objects.filter(response=response).update(due_at=timezone.now() - timedelta(hours=1))
    client = client_for(world.owner)
    first = client.post(reverse("assessments:resend", args=[response.pk]), follow=True)
    second = client.post(reverse("assessments:resend", args=[response.pk]), follow=True)
    assert "The invitation was sent to Jordan again." in page_text(first)
    # The refused double click is a warning, not news.
    assert '<li class="message warning">An invitation went to Jordan a moment ago' in second.content.decode()
    invitations = Reminder.objects.filter(response=response, kind=Reminder.Kind.INVITATION).order_by("sequence")
    assert [r.sequence for r in invitations] == [0, 1]
    assert Job.objects.filter(kind="partner_email", reminder__in=invitations).count() == 2
    assert AuditEvent.objects.filter(action="response.invitation_resend").count() == 1


def test_reissuing_replaces_the_link_and_ends_its_session_but_keeps_the_answers(world):
    assignment, tokens = make_assignment(world.couple)
    partner = start(tokens["B"])
    save(partner, "COM1", 2, 1)
    response = Response.objects.get(pk=partner.response_id)
    reply = client_for(world.owner).post(reverse("assessments:reissue", args=[response.pk]), follow=True)
    assert "Jordan's old link no longer works" in page_text(reply)
    _, old = open_link(tokens["B"])
    assert old.status_code == 410 and "This link no longer opens" in page_text(old)
    assert partner.get(reverse("assessments:welcome", args=[response.pk])).status_code == 403
    new_token = response.live_token()
    assert new_token != tokens["B"]
    fresh = start(new_token)
    assert fresh.response_id == response.pk
    assert Answer.objects.get(response=response).value == 2
    assert Reminder.objects.filter(response=response, kind=Reminder.Kind.INVITATION).count() == 2


def test_a_partner_who_submitted_gets_no_new_invitation(world):
    assignment, tokens = make_assignment(world.couple)
    partner = start(tokens["A"])
    answer_everything(partner)
    partner.post(reverse("assessments:submit", args=[partner.response_id]))
    client = client_for(world.owner)
    reply = client.post(reverse("assessments:resend", args=[partner.response_id]), follow=True)
    assert "Taylor has already submitted." in page_text(reply)
    assert Reminder.objects.filter(response_id=partner.response_id, kind=Reminder.Kind.INVITATION).count() == 1


# --- The whole journey, through a real worker -------------------------------------------------


def mail_messages(worker):
    """Every message the worker wrote. Django's file backend may put two messages sent within
    the same second into one file (its name is the second and the backend's id()), so count
    messages, not files."""
    separator = "\n" + "-" * 79 + "\n"
    return [m for path in worker.mails() for m in path.read_text().split(separator) if m.strip()]


@pytest.mark.smoke
@pytest.mark.worker
def test_assigning_mails_each_partner_a_link_that_opens_their_own_response(world, celery_worker_process):
    counselor = client_for(world.owner)
    counselor.post(assign_url(world), {"due_date": due_in(7, world.practice)})
    assignment = Assignment.objects.get(couple=world.couple)
    worker = celery_worker_process
    assert wait_for(lambda: len(mail_messages(worker)) == 2, timeout=90), worker.output()[-3000:]
    mails = {}
    for text in mail_messages(worker):
        to = re.search(r"^To: (\S+)$", text, re.M).group(1)
        mails[to] = text
    for text in mails.values():
        assert "Riverside Counseling" in text
        assert "Content-Type: text/html" in text and "Content-Type: text/plain" in text
        assert "Please finish by" in text
    links = {to: re.search(re.escape(settings.SITE_URL) + r"(/a/[\w-]+/)", text).group(1) for to, text in mails.items()}
    for to, name in (("taylor@example.com", "Taylor"), ("jordan@example.com", "Jordan")):
        laptop = Client()
        reply = laptop.get(links[to])
        page = page_text(laptop.get(reply["Location"]))
        assert f"You are answering as {name}" in page
        response_id = int(reply["Location"].strip("/").split("/")[1])
        assert Response.objects.get(pk=response_id).partner.email == to
        partner = start(links[to].split("/")[2])
        answer_everything(partner, value=4)
        # The browser is closed; on another device every answer is still chosen.
        phone = start(links[to].split("/")[2])
        section = page_text(phone.get(reverse("assessments:section", args=[response_id, 1])))
        assert section.count(" checked") == 5
        assert phone.post(reverse("assessments:submit", args=[response_id]))["Location"].endswith("/results/")
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.COMPLETED
    # The counselor hears that both have finished (and the worker leaves nothing queued behind).
    assert wait_for(lambda: len(mail_messages(worker)) == 3, timeout=90), worker.output()[-3000:]


def test_the_invitation_names_the_practice_and_the_due_day_in_the_practices_time_zone(world):
    world.practice.time_zone = "America/New_York"
    world.practice.save()
    due = due_in(7, world.practice)
    client_for(world.owner).post(assign_url(world), {"due_date": due})
    invitation = Reminder.objects.filter(kind=Reminder.Kind.INVITATION, response__partner__position="A").get()
    deliver()
    invitation.refresh_from_db()
    assert invitation.status == Reminder.Status.SENT
    (message,) = [m for m in mail.outbox if m.to == ["taylor@example.com"]]
    html = message.alternatives[0][0]
    day = timezone.datetime.fromisoformat(due).strftime("%A %-d %B %Y")
    # The subject names the practice, never what the message is about (docs/answering.md).
    assert message.subject == "A message from Riverside Counseling"
    for body in (message.body, html):
        assert day in body
        assert "Riverside Counseling" in body
        assert "/a/" in body
    assert "Jordan" not in message.body  # nothing about the other partner
