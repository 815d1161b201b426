"""Two-factor sign-in: set up with a QR code, verify once per session, recovery codes, enforcement."""

import re
import time

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from practice.models import AuditEvent, User
from tests.conftest import PASSWORD, client_for, page_text


def code_for(device, steps_ahead=0):
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def require_two_factor(practice):
    practice.require_two_factor = True
    practice.save()


def set_up(client, user):
    """Walk the set-up page as the person would; return the recovery codes shown."""
    page = client.get(reverse("two_factor_setup"))
    assert page.status_code == 200
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    done = client.post(reverse("two_factor_setup"), {"code": code_for(device)})
    assert done.status_code == 200, page_text(done)
    return re.findall(r"<li><code>([a-z0-9]+)</code></li>", done.content.decode())


def sign_in(email, password=PASSWORD):
    client = Client()
    response = client.post(reverse("login"), {"username": email, "password": password})
    assert response.status_code == 302
    return client


def test_staff_in_a_practice_requiring_two_factor_are_sent_to_set_it_up_from_a_clinical_page(world):
    require_two_factor(world.practice)
    client = client_for(world.owner)
    detail = reverse("assessments:couple", args=[world.couple.pk])
    response = client.get(detail)
    assert response.status_code == 302
    assert response["Location"] == reverse("two_factor_setup") + "?next=" + detail.replace("/", "%2F")
    assert "Taylor" not in response.content.decode()


def test_htmx_requests_of_an_unverified_staff_member_get_a_full_page_redirect_and_no_content(world):
    require_two_factor(world.practice)
    response = client_for(world.owner).get(reverse("assessments:caseload"), headers={"HX-Request": "true"})
    assert response["HX-Redirect"] == reverse("two_factor_setup")
    assert b"Taylor" not in response.content


def test_the_set_up_page_draws_the_qr_code_inline_and_shows_the_key(world):
    require_two_factor(world.practice)
    client = client_for(world.owner)
    page = client.get(reverse("two_factor_setup"))
    html = page.content.decode()
    assert '<svg role="img" aria-label="QR code for your authenticator app"' in html
    assert "<img" not in html.split('class="qr"', 1)[1].split("</div>", 1)[0]
    assert "Your practice asks everyone" in page_text(page)
    # Reloading keeps the same key, so a code scanned a moment ago still matches.
    device = TOTPDevice.objects.get(user=world.owner, confirmed=False)
    client.get(reverse("two_factor_setup"))
    assert TOTPDevice.objects.filter(user=world.owner).count() == 1
    assert TOTPDevice.objects.get(user=world.owner).key == device.key


def test_a_wrong_code_at_set_up_says_so_and_turns_nothing_on(world):
    client = client_for(world.owner)
    client.get(reverse("two_factor_setup"))
    response = client.post(reverse("two_factor_setup"), {"code": "000000"})
    assert response.status_code == 400
    assert "That code didn't match" in page_text(response)
    assert not TOTPDevice.objects.filter(user=world.owner, confirmed=True).exists()


def test_setting_up_shows_ten_recovery_codes_once_and_opens_clinical_pages(world):
    require_two_factor(world.practice)
    client = client_for(world.owner)
    codes = set_up(client, world.owner)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert client.get(reverse("assessments:couple", args=[world.couple.pk])).status_code == 200
    assert AuditEvent.objects.filter(action="auth.two_factor_on", actor=world.owner).exists()
    # The codes page is not shown again: the status page only counts them.
    status = client.get(reverse("two_factor_recovery_codes"))
    assert "You have 10 unused recovery codes" in page_text(status)
    assert codes[0] not in status.content.decode()


def test_each_new_session_must_verify_again_with_a_fresh_code(world):
    require_two_factor(world.practice)
    set_up(client_for(world.owner), world.owner)
    client = sign_in(world.owner.email)
    detail = reverse("assessments:couple", args=[world.couple.pk])
    assert client.get(detail)["Location"].startswith(reverse("two_factor_verify"))
    device = TOTPDevice.objects.get(user=world.owner)
    verified = client.post(reverse("two_factor_verify") + f"?next={detail}", {"code": code_for(device, 1)})
    assert verified.status_code == 302 and verified["Location"] == detail
    assert client.get(detail).status_code == 200


def test_a_code_cannot_be_used_twice(world):
    set_up(client_for(world.owner), world.owner)
    device = TOTPDevice.objects.get(user=world.owner)
    code = code_for(device, 1)
    first = sign_in(world.owner.email)
    assert first.post(reverse("two_factor_verify"), {"code": code}).status_code == 302
    second = sign_in(world.owner.email)
    replay = second.post(reverse("two_factor_verify"), {"code": code})
    assert replay.status_code == 400 and "That code didn't work" in page_text(replay)


def test_a_recovery_code_signs_in_once(world):
    require_two_factor(world.practice)
    codes = set_up(client_for(world.owner), world.owner)
    client = sign_in(world.owner.email)
    assert client.post(reverse("two_factor_verify"), {"code": codes[0].upper()}).status_code == 302
    assert client.get(reverse("assessments:caseload")).status_code == 200
    assert StaticToken.objects.filter(device__user=world.owner).count() == 9
    again = sign_in(world.owner.email).post(reverse("two_factor_verify"), {"code": codes[0]})
    assert again.status_code == 400


def test_new_recovery_codes_replace_the_old_ones(world):
    client = client_for(world.owner)
    old = set_up(client, world.owner)
    fresh = client.post(reverse("two_factor_recovery_codes"))
    new = re.findall(r"<li><code>([a-z0-9]+)</code></li>", fresh.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    assert sign_in(world.owner.email).post(reverse("two_factor_verify"), {"code": old[1]}).status_code == 400


def test_once_set_up_two_factor_is_asked_even_where_the_practice_does_not_require_it(world):
    assert not world.practice.require_two_factor
    set_up(client_for(world.owner), world.owner)
    client = sign_in(world.owner.email)
    assert client.get(reverse("assessments:caseload"))["Location"].startswith(reverse("two_factor_verify"))


def test_a_password_alone_cannot_replace_the_existing_authenticator(world):
    set_up(client_for(world.owner), world.owner)
    client = sign_in(world.owner.email)
    response = client.get(reverse("two_factor_setup"))
    assert response["Location"].startswith(reverse("two_factor_verify"))
    assert client.post(reverse("two_factor_setup"), {"code": "123456"})["Location"].startswith(
        reverse("two_factor_verify")
    )
    assert TOTPDevice.objects.filter(user=world.owner).count() == 1


def test_a_colleague_without_two_factor_in_a_practice_that_does_not_require_it_works_as_before(world):
    response = client_for(world.colleague).get(reverse("assessments:caseload"))
    assert response.status_code == 200


def test_verify_ignores_a_next_address_on_another_site(world):
    set_up(client_for(world.owner), world.owner)
    client = sign_in(world.owner.email)
    device = TOTPDevice.objects.get(user=world.owner)
    response = client.post(
        reverse("two_factor_verify"), {"code": code_for(device, 1), "next": "https://evil.example/x"}
    )
    assert response["Location"] == reverse("home")


@pytest.mark.parametrize("code", ["", "abc!", "1" * 41, "12 34 56"])
def test_malformed_codes_get_a_form_error_not_a_crash(world, code):
    set_up(client_for(world.owner), world.owner)
    client = sign_in(world.owner.email)
    response = client.post(reverse("two_factor_verify"), {"code": code})
    assert response.status_code == 400


def test_operators_must_use_two_factor_for_the_django_admin_when_required(db, settings):
    settings.OPERATORS_REQUIRE_TWO_FACTOR = True
    operator = User.objects.create_superuser("ops@example.org", PASSWORD)
    response = client_for(operator).get(reverse("admin:index"))
    assert response["Location"].startswith(reverse("two_factor_setup"))
    settings.OPERATORS_REQUIRE_TWO_FACTOR = False
    assert client_for(operator).get(reverse("admin:index")).status_code == 200


def test_sign_out_stays_reachable_before_the_second_factor(world):
    require_two_factor(world.practice)
    client = client_for(world.owner)
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert client.get(reverse("assessments:caseload"))["Location"].startswith(reverse("login"))


def test_resetting_two_factor_removes_the_devices_and_ends_the_persons_sessions(world):
    from practice.security import reset_two_factor

    require_two_factor(world.practice)
    client = client_for(world.owner)
    set_up(client, world.owner)
    assert client.get(reverse("assessments:caseload")).status_code == 200
    reset_two_factor(world.owner)
    assert not TOTPDevice.objects.filter(user=world.owner).exists()
    assert client.get(reverse("assessments:caseload"))["Location"].startswith(reverse("login"))
    again = sign_in(world.owner.email)
    assert again.get(reverse("assessments:caseload"))["Location"].startswith(reverse("two_factor_setup"))


def test_the_security_layer_adds_no_query_to_an_ordinary_staff_page(world, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(world.owner)
    url = reverse("assessments:caseload")
    client.get(url)
    with CaptureQueriesContext(connection) as with_security:
        client.get(url)
    settings.MIDDLEWARE = [
        m
        for m in settings.MIDDLEWARE
        if m
        not in (
            "django_otp.middleware.OTPMiddleware",
            "csp.middleware.CSPMiddleware",
            "practice.security.SecurityMiddleware",
            "axes.middleware.AxesMiddleware",
        )
    ]
    plain = Client()  # a new client loads the shorter middleware chain
    plain.cookies = client.cookies
    with CaptureQueriesContext(connection) as without:
        assert plain.get(url).status_code == 200
    assert len(with_security) == len(without), [q["sql"] for q in with_security.captured_queries]
