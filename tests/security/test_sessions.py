"""Sessions: idle and absolute limits, a new key at sign-in, ends on the server, partner scope."""

import time
from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import PASSWORD, client_for, deliver, make_assignment

from .test_two_factor import code_for, set_up, sign_in
from .timetravel import travel

SessionStore = import_module(settings.SESSION_ENGINE).SessionStore


def session_key(client):
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def open_link(token):
    client = Client()
    assert client.get(reverse("assessments:open_link", args=[token])).status_code == 302
    return client


def test_a_staff_session_ends_after_31_idle_minutes(world):
    start = timezone.now()
    with travel(start):
        client = client_for(world.owner)
        assert client.get(reverse("assessments:caseload")).status_code == 200
    with travel(start + timedelta(minutes=31)):
        response = client.get(reverse("assessments:caseload"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_activity_within_30_minutes_keeps_a_staff_session(world):
    start = timezone.now()
    with travel(start):
        client = client_for(world.owner)
        client.get(reverse("assessments:caseload"))
    with travel(start + timedelta(minutes=29)):
        assert client.get(reverse("assessments:caseload")).status_code == 200
    with travel(start + timedelta(minutes=58)):
        assert client.get(reverse("assessments:caseload")).status_code == 200


def test_stay_signed_in_renews_the_idle_limit(world):
    start = timezone.now()
    with travel(start):
        client = client_for(world.owner)
        client.get(reverse("assessments:caseload"))
    with travel(start + timedelta(minutes=25)):
        assert client.get(reverse("keep_alive")).status_code == 204
    with travel(start + timedelta(minutes=50)):
        assert client.get(reverse("assessments:caseload")).status_code == 200


def test_a_staff_session_ends_twelve_hours_after_sign_in_however_active(world):
    client = client_for(world.owner)
    client.get(reverse("assessments:caseload"))
    session = SessionStore(session_key(client))
    session["signed_in_at"] = int(time.time()) - settings.SESSION_ABSOLUTE_SECONDS - 1
    session.save()
    response = client.get(reverse("assessments:caseload"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert client.get(reverse("assessments:caseload")).status_code == 302


def test_signed_in_pages_carry_the_idle_warning_and_its_script(world):
    page = client_for(world.owner).get(reverse("assessments:caseload")).content.decode()
    assert 'id="session-warning"' in page and 'data-idle-seconds="1800"' in page
    assert 'data-warning-seconds="300"' in page
    assert "/static/js/session.js" in page and "defer" in page.split("session.js", 1)[1].split(">", 1)[0]


def test_partner_pages_have_no_staff_idle_warning(world):
    _, tokens = make_assignment(world.couple)
    client = open_link(tokens["A"])
    page = client.get(client.get(reverse("assessments:open_link", args=[tokens["A"]]))["Location"])
    assert 'id="session-warning"' not in page.content.decode()


def test_signing_in_gives_a_new_session_key(world):
    _, tokens = make_assignment(world.couple)
    client = open_link(tokens["A"])  # a session that existed before sign-in
    before = session_key(client)
    client.post(reverse("login"), {"username": world.owner.email, "password": PASSWORD})
    after = session_key(client)
    assert after != before
    assert not SessionStore(before).exists(before)


def test_signing_out_ends_the_session_on_the_server(world):
    client = client_for(world.owner)
    key = session_key(client)
    client.post(reverse("logout"))
    assert not SessionStore(key).exists(key)
    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = key
    assert replay.get(reverse("assessments:caseload")).status_code == 302


def test_deactivating_a_counselor_ends_their_sessions_on_the_server(world):
    first, second = client_for(world.owner), client_for(world.owner)
    keys = [session_key(first), session_key(second)]
    colleague = client_for(world.colleague)
    world.owner.is_active = False
    world.owner.save()
    assert not any(SessionStore(k).exists(k) for k in keys)
    assert first.get(reverse("assessments:caseload")).status_code == 302
    assert colleague.get(reverse("assessments:caseload")).status_code == 200


def test_removing_a_counselor_from_the_practice_ends_their_sessions(world):
    client = client_for(world.colleague)
    key = session_key(client)
    world.colleague.membership.delete()
    assert not SessionStore(key).exists(key)


def test_a_partner_session_reaches_one_response_only(world):
    assignment, tokens = make_assignment(world.couple)
    client = open_link(tokens["A"])
    own = assignment.responses.get(partner__position="A")
    other = assignment.responses.get(partner__position="B")
    assert client.get(reverse("assessments:welcome", args=[own.pk])).status_code == 200
    assert client.get(reverse("assessments:welcome", args=[other.pk])).status_code == 403
    assert client.get(reverse("assessments:caseload"))["Location"].startswith(reverse("login"))


def test_a_partner_session_stays_while_in_use_and_ends_after_half_an_hour_idle(world):
    # Short on purpose: a phone left on the table must not keep the partner's pages open for
    # whoever picks it up. Every answer is saved as it is chosen, so reopening the link loses nothing.
    assignment, tokens = make_assignment(world.couple)
    own = assignment.responses.get(partner__position="A")
    start = timezone.now()
    with travel(start):
        client = open_link(tokens["A"])
        client.get(reverse("assessments:welcome", args=[own.pk]))
    assert client.session.get_expiry_age() == settings.PARTNER_SESSION_IDLE_SECONDS
    assert settings.PARTNER_SESSION_IDLE_SECONDS == 30 * 60
    with travel(start + timedelta(minutes=25)):
        assert client.get(reverse("assessments:welcome", args=[own.pk])).status_code == 200
    with travel(start + timedelta(minutes=50)):  # 25 minutes after the last page: still in use
        assert client.get(reverse("assessments:welcome", args=[own.pk])).status_code == 200
    with travel(start + timedelta(minutes=50) + timedelta(seconds=settings.PARTNER_SESSION_IDLE_SECONDS + 60)):
        assert client.get(reverse("assessments:welcome", args=[own.pk])).status_code == 403


def test_session_cookies_are_http_only_and_same_site(world):
    client = client_for(world.owner)
    response = client.get(reverse("assessments:caseload"))
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"


# --- A change of password or second factor ends the person's other sessions ----------------------


def test_turning_on_two_factor_ends_the_persons_other_sessions_and_keeps_this_one(world):
    this, other = client_for(world.owner), client_for(world.owner)
    colleague = client_for(world.colleague)
    other_key = session_key(other)
    assert other.get(reverse("assessments:caseload")).status_code == 200
    set_up(this, world.owner)
    assert not SessionStore(other_key).exists(other_key)
    assert other.get(reverse("assessments:caseload"))["Location"].startswith(reverse("login"))
    assert this.get(reverse("assessments:caseload")).status_code == 200
    assert colleague.get(reverse("assessments:caseload")).status_code == 200


def test_new_recovery_codes_end_the_persons_other_sessions(world):
    this = client_for(world.owner)
    set_up(this, world.owner)
    other = sign_in(world.owner.email)
    device = TOTPDevice.objects.get(user=world.owner)
    assert other.post(reverse("two_factor_verify"), {"code": code_for(device, 1)}).status_code == 302
    assert other.get(reverse("assessments:caseload")).status_code == 200
    assert this.post(reverse("two_factor_recovery_codes")).status_code == 200
    assert other.get(reverse("assessments:caseload"))["Location"].startswith(reverse("login"))
    assert this.get(reverse("assessments:caseload")).status_code == 200


def test_an_operator_removing_a_persons_authenticator_ends_their_sessions(world):
    client = client_for(world.owner)
    set_up(client, world.owner)
    TOTPDevice.objects.get(user=world.owner).delete()
    assert client.get(reverse("assessments:caseload"))["Location"].startswith(reverse("login"))


def test_a_password_reset_ends_every_session_signed_in_with_the_old_password(world, mailoutbox):
    signed_in = client_for(world.owner)
    key = session_key(signed_in)
    Client().post(reverse("password_reset"), {"email": world.owner.email})
    deliver()
    path = mailoutbox[0].body.split(settings.SITE_URL, 1)[1].split()[0]
    resetting = Client()
    form = resetting.get(path, follow=True)
    new = "a brand new long passphrase"
    done = resetting.post(form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert done.status_code == 302 and done["Location"] == reverse("password_reset_complete")
    assert not SessionStore(key).exists(key)
    assert signed_in.get(reverse("assessments:caseload"))["Location"].startswith(reverse("login"))
    assert Client().post(reverse("login"), {"username": world.owner.email, "password": new}).status_code == 302


def test_a_password_changed_anywhere_signs_out_the_other_sessions_at_their_next_page(world):
    # Django's session hash: a session signed in with the old password is refused at its next page,
    # whoever changed it (an operator in the Django admin, or a command).
    signed_in = client_for(world.owner)
    world.owner.set_password("a brand new long passphrase")
    world.owner.save()
    assert signed_in.get(reverse("assessments:caseload"))["Location"].startswith(reverse("login"))
