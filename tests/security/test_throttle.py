"""Guessing secret links is slowed per address: past TOKEN_LOOKUP_LIMIT unknown tokens in the
window, every lookup from that address gets a readable 429; a partner who mistypes once never does."""

import ipaddress
import secrets
import socket
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from assessments.reminders import unsubscribe_token
from practice.models import Invitation
from tests.conftest import TOKEN_LOOKUP_LIMIT, make_assignment, page_text

PAUSED_WORDS = "Please wait a few minutes"


@pytest.fixture
def address(settings):
    """A client address of its own, with no count left over from an earlier run; the real limit."""
    settings.TOKEN_LOOKUP_LIMIT = TOKEN_LOOKUP_LIMIT
    settings.TRUSTED_PROXIES = 1
    # In the documentation range, random: parallel test processes share the cache.
    ip = str(ipaddress.IPv6Address((0x20010DB8 << 96) | secrets.randbits(64)))
    cache.delete(f"token-lookups:{ip}")
    yield ip
    cache.delete(f"token-lookups:{ip}")


def through_proxy(ip):
    return Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=ip)


def unknown(kind, n):
    return {
        "link": reverse("assessments:open_link", args=[f"unknown-link-{n}"]),
        "invitation": reverse("practice:invitation_accept", args=[f"unknown-invitation-{n}"]),
        "unsubscribe": reverse("assessments:unsubscribe", args=[f"unknown-unsubscribe-{n}"]),
    }[kind]


def test_the_limit_is_twenty_unknown_tokens_in_ten_minutes(settings):
    assert TOKEN_LOOKUP_LIMIT == 20 and settings.TOKEN_LOOKUP_WINDOW_SECONDS == 600


@pytest.mark.parametrize("kind", ["link", "invitation", "unsubscribe"])
def test_an_address_guessing_tokens_is_paused_at_exactly_the_limit(world, address, kind):
    client = through_proxy(address)
    for n in range(TOKEN_LOOKUP_LIMIT):
        assert client.get(unknown(kind, n)).status_code in (404, 410), n
    paused = client.get(unknown(kind, "next"))
    assert paused.status_code == 429 and PAUSED_WORDS in page_text(paused)
    assert paused["Retry-After"] == "600" and "10 minutes" in page_text(paused)


def test_a_paused_address_is_refused_even_a_right_token_and_others_are_not(world, address):
    _assignment, tokens = make_assignment(world.couple)
    client = through_proxy(address)
    for n in range(TOKEN_LOOKUP_LIMIT):
        client.get(unknown(["link", "invitation", "unsubscribe"][n % 3], n))
    # Guesses of all three kinds add up; now even a real link is not answered from here...
    assert client.get(reverse("assessments:open_link", args=[tokens["A"]])).status_code == 429
    # ...while the partner at home opens it as always.
    assert through_proxy("203.0.113.50").get(reverse("assessments:open_link", args=[tokens["A"]])).status_code == 302


def test_a_partner_who_mistypes_once_is_never_throttled(world, address):
    _assignment, tokens = make_assignment(world.couple)
    client = through_proxy(address)
    assert client.get(reverse("assessments:open_link", args=[tokens["A"][:-1]])).status_code == 404
    assert client.get(reverse("assessments:open_link", args=[tokens["A"]])).status_code == 302
    partner = world.couple.partners.get(position="A")
    assert client.get(reverse("assessments:unsubscribe", args=[unsubscribe_token(partner)])).status_code == 200


def test_known_but_replaced_or_expired_links_do_not_count_as_guesses(world, address):
    assignment, tokens = make_assignment(world.couple, now=timezone.now() - timedelta(days=90))
    client = through_proxy(address)
    for _ in range(TOKEN_LOOKUP_LIMIT + 5):
        assert client.get(reverse("assessments:open_link", args=[tokens["A"]])).status_code == 410
    invitation, token = Invitation.issue(
        practice=world.practice, email="n@riverside.example", role="counselor", by=None
    )
    assert client.get(reverse("practice:invitation_accept", args=[token])).status_code == 200


def test_the_pause_ends_when_the_window_expires_in_the_cache(world, address, settings):
    settings.TOKEN_LOOKUP_WINDOW_SECONDS = 4  # long enough for 21 requests on a busy machine
    client = through_proxy(address)
    for n in range(TOKEN_LOOKUP_LIMIT):
        client.get(unknown("link", n))
    assert client.get(unknown("link", "x")).status_code == 429
    time.sleep(4.5)
    assert client.get(unknown("link", "y")).status_code == 404


def test_a_partners_link_still_opens_when_the_cache_does_not_answer(world, address):
    # A Redis address where nothing listens: the throttle steps aside, the partner is not refused.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    nowhere = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": f"redis://127.0.0.1:{port}/0"}
    _assignment, tokens = make_assignment(world.couple)
    client = through_proxy(address)
    with override_settings(CACHES={"default": nowhere}):
        assert client.get(reverse("assessments:open_link", args=["unknown-link"])).status_code == 404
        assert client.get(reverse("assessments:open_link", args=[tokens["A"]])).status_code == 302
