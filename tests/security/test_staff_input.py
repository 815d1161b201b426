"""Staff input that used to reach a server error: dates at the edges of Python's range, Unicode
digits, a malformed htmx post, and line breaks that would end up in an e-mail header. Each gets a
readable form error or 4xx, and changes nothing."""

import pytest
from django.core import mail
from django.urls import reverse

from practice.models import Invitation, Practice, User
from tests.conftest import PASSWORD, client_for, deliver, make_assignment, page_text

OUT_OF_RANGE = "Choose a date from 1900-01-01 to 2199-12-31."
EDGES = [{"end": "9999-12-31"}, {"start": "0001-01-01"}, {"start": "0001-01-01", "end": "9999-12-31"}]


@pytest.mark.parametrize("query", EDGES)
@pytest.mark.parametrize("page", ["assessments:statistics", "practice:audit_log"])
def test_a_period_at_the_edge_of_the_calendar_is_a_form_error(world, page, query):
    response = client_for(world.admin).get(reverse(page), query)
    assert response.status_code == 200
    assert OUT_OF_RANGE in page_text(response)


@pytest.mark.parametrize("query", EDGES)
def test_the_audit_export_sends_an_impossible_period_back_to_the_log_with_the_error(world, query):
    client = client_for(world.admin)
    response = client.get(reverse("practice:audit_export"), query)
    assert response.status_code == 302 and response["Location"].startswith(reverse("practice:audit_log"))
    assert OUT_OF_RANGE in page_text(client.get(response["Location"]))


@pytest.mark.parametrize("query", EDGES)
def test_the_export_form_refuses_an_impossible_period(world, query):
    response = client_for(world.admin).post(
        reverse("assessments:exports"), {"kind": "answers", "format": "csv", **query}
    )
    assert response.status_code == 400
    assert OUT_OF_RANGE in page_text(response)


def test_the_last_and_first_sane_days_still_work(world):
    client = client_for(world.admin)
    response = client.get(reverse("assessments:statistics"), {"start": "1900-01-01", "end": "2199-12-31"})
    assert response.status_code == 200 and OUT_OF_RANGE not in page_text(response)


@pytest.mark.parametrize("couple", ["²", "١٢٣٤", "9" * 40, "\x00"])
def test_transfer_ignores_a_couple_id_that_is_no_id(world, couple):
    response = client_for(world.admin).get(
        reverse("clients:transfer", args=[world.owner.membership.pk]), {"couple": couple}
    )
    assert response.status_code == 200


@pytest.mark.parametrize("actor", ["²", "٣", str(2**64)])
def test_the_audit_log_refuses_an_actor_that_is_no_id(world, actor):
    response = client_for(world.admin).get(reverse("practice:audit_log"), {"actor": actor})
    assert response.status_code == 200
    assert "Select a valid choice" in page_text(response)


@pytest.mark.parametrize("data", [{"paused": "1", "assignment": "abc"}, {"paused": "maybe"}, {}])
def test_a_malformed_pause_changes_nothing_and_says_so(world, data):
    make_assignment(world.couple)
    client = client_for(world.owner)
    url = reverse("assessments:pause_reminders", args=[world.couple.pk])
    response = client.post(url, data, headers={"HX-Request": "true"})
    assert response.status_code == 200 and response["HX-Redirect"] == reverse(
        "assessments:couple", args=[world.couple.pk]
    )
    world.couple.refresh_from_db()
    assert world.couple.reminders_paused is False
    page = page_text(client.get(response["HX-Redirect"]))
    assert "reminders were not changed" in page
    plain = client.post(url, data)
    assert plain.status_code == 302
    world.couple.refresh_from_db()
    assert world.couple.reminders_paused is False


VALID_SETTINGS = {
    "time_zone": "UTC",
    "default_due_days": "7",
    "link_grace_days": "14",
    "reminder_after_days": "",
    "reminder_before_due_days": "0",
    "quiet_hours_start": "00:00",
    "quiet_hours_end": "00:00",
}


@pytest.mark.parametrize("name", ["Riverside\r\nBcc: everyone@example.com", "Riverside\nCounseling", "Tab\there"])
def test_a_practice_name_with_a_line_break_cannot_be_saved(world, name):
    response = client_for(world.admin).post(reverse("practice:settings"), {**VALID_SETTINGS, "name": name})
    assert response.status_code == 200
    assert "on one line, without line breaks" in page_text(response)
    assert Practice.objects.get(pk=world.practice.pk).name == "Riverside Counseling"


def test_the_django_admin_cannot_save_a_practice_name_with_a_line_break(world, settings):
    settings.OPERATORS_REQUIRE_TWO_FACTOR = False
    operator = User.objects.create_superuser("ops@example.org", PASSWORD)
    url = reverse("admin:practice_practice_change", args=[world.practice.pk])
    data = {
        "name": "Riverside\r\nBcc: everyone@example.com",
        "slug": "riverside",
        "time_zone": "UTC",
        "default_due_days": 7,
        "link_grace_days": 14,
        "quiet_hours_start": "00:00",
        "quiet_hours_end": "00:00",
        "reminder_policy": "{}",
    }
    response = client_for(operator).post(url, data)
    assert response.status_code == 200 and "on one line, without line breaks" in page_text(response)
    assert Practice.objects.get(pk=world.practice.pk).name == "Riverside Counseling"


def test_an_invitation_from_a_practice_whose_stored_name_has_a_line_break_is_sent_on_one_header_line(world):
    # A name stored before names were checked: the invitation is still sent, its subject one line.
    Practice.objects.filter(pk=world.practice.pk).update(name="Riverside\r\nBcc: everyone@example.com")
    response = client_for(world.admin).post(
        reverse("practice:invite"), {"email": "new@riverside.example", "role": "counselor"}
    )
    assert response.status_code == 302
    deliver()
    (message,) = mail.outbox
    assert message.to == ["new@riverside.example"] and message.bcc == []
    assert "\r" not in message.subject and "\n" not in message.subject
    header_lines = message.message().as_string().split("\n\n", 1)[0].splitlines()
    assert not any(line.lower().startswith("bcc:") for line in header_lines)
    assert Invitation.objects.get(email="new@riverside.example").is_usable
