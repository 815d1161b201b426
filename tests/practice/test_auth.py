import pytest
from django.test import Client
from django.urls import reverse

from practice.models import AuditEvent
from tests.conftest import PASSWORD, client_for, deliver, page_text

pytestmark = pytest.mark.smoke


def sign_in(client, email, password):
    return client.post(reverse("login"), {"username": email, "password": password})


def test_counselor_signs_in_by_email_and_lands_on_their_caseload(world):
    client = Client()
    response = sign_in(client, world.owner.email, PASSWORD)
    assert response.status_code == 302
    page = client.get(response["Location"], follow=True)
    assert page.redirect_chain[-1][0] == reverse("assessments:caseload")
    assert "Taylor &amp; Jordan" in page.content.decode()
    assert AuditEvent.objects.filter(action="auth.sign_in", actor=world.owner).count() == 1


def test_the_email_signs_in_whatever_its_case_and_surrounding_spaces(world):
    typed = "  " + world.owner.email.upper() + " "
    response = sign_in(Client(), typed, PASSWORD)
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="auth.sign_in", actor=world.owner).count() == 1
    assert not AuditEvent.objects.filter(action="auth.sign_in_failed").exists()


def test_practice_admin_without_couples_lands_on_the_practice_page(world):
    client = Client()
    sign_in(client, world.admin.email, PASSWORD)
    page = client.get("/", follow=True)
    assert page.redirect_chain[-1][0] == reverse("practice:overview")


def test_wrong_password_and_unknown_email_get_the_same_message(world):
    wrong = sign_in(Client(), world.owner.email, "not the password").content.decode()
    unknown = sign_in(Client(), "nobody@nowhere.example", "not the password").content.decode()
    message = "That e-mail and password do not match an active account."
    assert message in wrong and message in unknown
    assert AuditEvent.objects.filter(action="auth.sign_in_failed").count() == 2
    assert not AuditEvent.objects.filter(detail__has_key="password").exists()


def test_anonymous_visitor_is_sent_to_sign_in(db):
    response = Client().get(reverse("assessments:caseload"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_password_reset_page_is_public_and_does_not_reveal_accounts(world, mailoutbox):
    client = Client()
    assert client.get(reverse("password_reset")).status_code == 200
    known = client.post(reverse("password_reset"), {"email": world.owner.email})
    unknown = client.post(reverse("password_reset"), {"email": "nobody@nowhere.example"})
    assert known["Location"] == unknown["Location"] == reverse("password_reset_done")
    assert mailoutbox == []  # written by a worker, never inside the request
    deliver()
    assert len(mailoutbox) == 1 and mailoutbox[0].to == [world.owner.email]


def test_the_password_reset_link_is_built_from_site_url_not_the_requests_host(world, mailoutbox, settings):
    settings.ALLOWED_HOSTS = ["testserver", "attacker.example"]
    Client().post(reverse("password_reset"), {"email": world.owner.email}, headers={"host": "attacker.example"})
    deliver()
    (mail,) = mailoutbox
    assert f"{settings.SITE_URL}/accounts/reset/" in mail.body and "attacker.example" not in mail.body
    path = mail.body.split(settings.SITE_URL, 1)[1].split()[0]
    assert Client().get(path, follow=True).status_code == 200


def test_sign_out_ends_the_session(world):
    client = client_for(world.owner)
    assert client.get(reverse("assessments:caseload")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("assessments:caseload")).status_code == 302


def test_signed_in_unknown_page_is_a_readable_404(world, settings):
    settings.DEBUG = False
    response = client_for(world.owner).get("/no-such-page/")
    assert response.status_code == 404
    assert "We can't find that page" in page_text(response)


def test_admin_page_is_refused_to_a_counselor_with_a_plain_403(world, settings):
    settings.DEBUG = False
    response = client_for(world.owner).get(reverse("practice:overview"))
    assert response.status_code == 403
    assert "Only a practice admin can open this page." in response.content.decode()


def test_practice_page_lists_only_its_own_people(world):
    page = client_for(world.admin).get(reverse("practice:overview")).content.decode()
    assert world.owner.email in page and world.colleague.email in page
    assert world.outsider.email not in page
    page = client_for(world.outsider_admin).get(reverse("practice:overview")).content.decode()
    assert world.owner.email not in page


def test_an_active_session_is_written_at_most_once_a_minute_and_its_expiry_slides(world):
    from datetime import timedelta
    from unittest import mock

    from django.contrib.sessions.models import Session
    from django.utils import timezone

    client = client_for(world.owner)
    client.get(reverse("assessments:caseload"))
    key = client.session.session_key
    first = Session.objects.get(session_key=key).expire_date
    client.get(reverse("assessments:caseload"))
    assert Session.objects.get(session_key=key).expire_date == first  # no write within the minute
    later = timezone.now() + timedelta(minutes=2)
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert client.get(reverse("assessments:caseload")).status_code == 200
    assert Session.objects.get(session_key=key).expire_date >= first + timedelta(minutes=2) - timedelta(seconds=1)
