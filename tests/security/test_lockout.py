"""Sign-in lockout: five failures pause sign-in for exactly the cool-off, then it works again."""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from practice.models import AuditEvent
from tests.conftest import PASSWORD, page_text

from .timetravel import travel

LOCKED_WORDS = "Sign-in is paused for a while"


def attempt(email, password, ip="192.0.2.10"):
    client = Client(REMOTE_ADDR=ip)
    return client.post(reverse("login"), {"username": email, "password": password})


def fail(email, times, ip="192.0.2.10"):
    for _ in range(times):
        response = attempt(email, "not the password", ip)
        assert response.status_code in (200, 429)


def main_text(response):
    """The page's <main>, without the per-request CSRF token."""
    main = page_text(response).split("<main", 1)[1].split("</main>", 1)[0]
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", main)


def signs_in(response):
    return response.status_code == 302 and response["Location"] == reverse("home")


def test_four_failures_do_not_lock_and_the_right_password_still_works(world):
    fail(world.owner.email, settings.AXES_FAILURE_LIMIT - 1)
    assert signs_in(attempt(world.owner.email, PASSWORD))


def test_the_fifth_failure_locks_even_the_right_password_out(world):
    fail(world.owner.email, settings.AXES_FAILURE_LIMIT - 1)
    fifth = attempt(world.owner.email, "not the password")
    assert fifth.status_code == 429 and LOCKED_WORDS in page_text(fifth)
    locked = attempt(world.owner.email, PASSWORD)
    assert locked.status_code == 429
    assert "15 minutes" in page_text(locked)
    assert "sessionid" not in locked.cookies


def test_lockout_releases_exactly_at_the_end_of_the_cool_off(world):
    start = timezone.now()
    with travel(start):
        fail(world.owner.email, settings.AXES_FAILURE_LIMIT)
    with travel(start + settings.AXES_COOLOFF_TIME - timedelta(seconds=1)):
        # Still paused one second before the end (and this early try does not extend the pause).
        assert attempt(world.owner.email, PASSWORD).status_code == 429
    with travel(start + settings.AXES_COOLOFF_TIME + timedelta(seconds=1)):
        assert signs_in(attempt(world.owner.email, PASSWORD))


def test_a_lockout_is_never_permanent_even_after_many_more_failures(world):
    start = timezone.now()
    with travel(start):
        fail(world.owner.email, 3 * settings.AXES_FAILURE_LIMIT)
    with travel(start + settings.AXES_COOLOFF_TIME + timedelta(seconds=1)):
        assert signs_in(attempt(world.owner.email, PASSWORD))


def test_unknown_email_and_known_email_get_the_same_lockout_page(world):
    fail(world.owner.email, settings.AXES_FAILURE_LIMIT, ip="192.0.2.20")
    fail("nobody@nowhere.example", settings.AXES_FAILURE_LIMIT, ip="192.0.2.21")
    known = attempt(world.owner.email, PASSWORD, ip="192.0.2.20")
    unknown = attempt("nobody@nowhere.example", PASSWORD, ip="192.0.2.21")
    assert known.status_code == unknown.status_code == 429
    assert main_text(known) == main_text(unknown)


def test_wrong_password_and_unknown_email_before_lockout_look_the_same(world):
    wrong = attempt(world.owner.email, "not the password")
    unknown = attempt("nobody@nowhere.example", "not the password", ip="192.0.2.30")
    assert wrong.status_code == unknown.status_code == 200
    assert main_text(wrong).replace(world.owner.email, "X") == main_text(unknown).replace("nobody@nowhere.example", "X")


def test_one_address_trying_many_emails_is_paused_too(world):
    for n in range(settings.AXES_FAILURE_LIMIT):
        attempt(f"guess{n}@nowhere.example", "not the password", ip="192.0.2.40")
    assert attempt(world.owner.email, PASSWORD, ip="192.0.2.40").status_code == 429
    # Another address is not affected.
    assert signs_in(attempt(world.owner.email, PASSWORD, ip="192.0.2.41"))


def test_every_failed_sign_in_is_audited_without_the_password(world):
    fail(world.owner.email, settings.AXES_FAILURE_LIMIT + 1)
    events = AuditEvent.objects.filter(action="auth.sign_in_failed")
    assert events.count() >= settings.AXES_FAILURE_LIMIT
    assert not any("not the password" in str(e.detail) for e in events)


@pytest.mark.parametrize("hasher", ["django.contrib.auth.hashers.Argon2PasswordHasher"])
def test_passwords_are_stored_with_argon2(world, settings, hasher):
    settings.PASSWORD_HASHERS = [hasher]
    world.owner.set_password("a new long passphrase")
    world.owner.save()
    world.owner.refresh_from_db()
    assert world.owner.password.startswith("argon2$")


def test_weak_passwords_are_refused_when_choosing_a_new_one(world):
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    for weak in ("password123", "1234567890", "owner@riverside"):
        with pytest.raises(ValidationError):
            validate_password(weak, world.owner)


def test_the_lockout_records_never_keep_the_password(world):
    from axes.models import AccessAttempt, AccessFailureLog

    fail(world.owner.email, settings.AXES_FAILURE_LIMIT)
    stored = [str(row) for row in AccessAttempt.objects.values()] + [
        str(row) for row in AccessFailureLog.objects.values()
    ]
    assert stored and not any("not the password" in row for row in stored)


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "198.51.100.9", "127.0.0.1"),  # no proxy: a client-written header is ignored
        (1, "198.51.100.9", "198.51.100.9"),
        (1, "203.0.113.66, 198.51.100.9", "198.51.100.9"),  # a spoofed hop on the left is ignored
        (2, "203.0.113.66, 198.51.100.9, 10.0.0.2", "198.51.100.9"),
        (2, "198.51.100.9", "127.0.0.1"),  # fewer hops than proxies: the header is not trusted
    ],
)
def test_the_lockout_counts_the_address_the_trusted_proxies_saw(settings, rf, proxies, forwarded, expected):
    from practice.models import client_address

    settings.TRUSTED_PROXIES = proxies
    request = rf.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected


def test_behind_a_proxy_one_visitors_failures_do_not_pause_everyone_else_behind_it(world, settings):
    settings.TRUSTED_PROXIES = 1
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for _ in range(settings.AXES_FAILURE_LIMIT):
        Client(**proxy, HTTP_X_FORWARDED_FOR="198.51.100.1").post(
            reverse("login"), {"username": "guess@nowhere.example", "password": "x"}
        )
    colleague = Client(**proxy, HTTP_X_FORWARDED_FOR="198.51.100.2").post(
        reverse("login"), {"username": world.owner.email, "password": PASSWORD}
    )
    assert signs_in(colleague)


# --- Through the trusted proxy, as in production: per account and per address -------------------


def through_proxy(email, password, client_ip):
    """A sign-in as production sees it: DEBUG off, one proxy appending the client's address."""
    client = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=client_ip)
    return client.post(reverse("login"), {"username": email, "password": password})


production = pytest.mark.usefixtures("_behind_one_proxy")


@pytest.fixture
def _behind_one_proxy(settings):
    settings.DEBUG = False
    settings.TRUSTED_PROXIES = 1


@production
def test_an_account_is_locked_after_failures_from_many_addresses_even_from_a_new_one(world):
    limit = settings.AXES_FAILURE_LIMIT
    for n in range(limit - 1):
        assert through_proxy(world.owner.email, "not the password", f"198.51.100.{n + 1}").status_code == 200
    # Failure N-1 is still an ordinary form error; the right password from elsewhere still works.
    assert signs_in(through_proxy(world.owner.email, PASSWORD, "198.51.100.50"))
    for n in range(limit):
        response = through_proxy(world.owner.email, "not the password", f"198.51.100.{n + 1}")
    assert response.status_code == 429 and LOCKED_WORDS in page_text(response)
    # The right password from a sixth address, never seen before, is refused too.
    assert through_proxy(world.owner.email, PASSWORD, "203.0.113.77").status_code == 429


@production
def test_the_account_count_ignores_the_case_and_spaces_the_email_is_typed_with(world):
    email = world.owner.email
    variants = [email.upper(), f"  {email.title()} ", email, email.capitalize(), f"{email} "]
    for n, typed in enumerate(variants[: settings.AXES_FAILURE_LIMIT]):
        through_proxy(typed, "not the password", f"198.51.100.{n + 10}")
    assert through_proxy(email, PASSWORD, "203.0.113.78").status_code == 429


@production
def test_failures_for_one_account_do_not_pause_another_account(world):
    for n in range(settings.AXES_FAILURE_LIMIT):
        through_proxy(world.owner.email, "not the password", f"198.51.100.{n + 1}")
    # A colleague's mistyped password from their own address is an ordinary form error, not "paused".
    mistyped = through_proxy(world.colleague.email, "not the password", "203.0.113.5")
    assert mistyped.status_code == 200 and LOCKED_WORDS not in page_text(mistyped)
    assert signs_in(through_proxy(world.colleague.email, PASSWORD, "203.0.113.5"))


@production
def test_one_address_is_paused_at_exactly_the_limit_whatever_emails_it_tries(world):
    limit = settings.AXES_FAILURE_LIMIT
    for n in range(limit - 1):
        assert through_proxy(f"guess{n}@nowhere.example", "x", "198.51.100.9").status_code == 200
    assert signs_in(through_proxy(world.owner.email, PASSWORD, "198.51.100.9"))
    for n in range(limit - 1):
        through_proxy(f"guess{n}@nowhere.example", "x", "198.51.100.9")
    # The owner's success cleared the owner's failures only: this address is at N-1 again.
    last = through_proxy("guess-last@nowhere.example", "x", "198.51.100.9")
    assert last.status_code == 429
    assert through_proxy(world.colleague.email, PASSWORD, "198.51.100.9").status_code == 429
    assert signs_in(through_proxy(world.colleague.email, PASSWORD, "198.51.100.10"))


@production
def test_signing_in_to_ones_own_account_does_not_clear_the_count_against_another(world):
    limit = settings.AXES_FAILURE_LIMIT
    attacker_ip = "198.51.100.66"
    for _ in range(limit - 1):
        through_proxy(world.owner.email, "guess", attacker_ip)
        # The attacker has an account of their own (a colleague's) and signs in with it in between.
        assert signs_in(through_proxy(world.colleague.email, PASSWORD, attacker_ip))
    through_proxy(world.owner.email, "guess", "203.0.113.9")
    assert through_proxy(world.owner.email, PASSWORD, "203.0.113.10").status_code == 429
