from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import make_assignment, page_text

pytestmark = pytest.mark.smoke


def test_a_partner_link_opens_only_that_partners_response_and_drops_the_token(world):
    assignment, tokens = make_assignment(world.couple)
    client = Client()
    response = client.get(reverse("assessments:open_link", args=[tokens["A"]]))
    assert response.status_code == 302
    assert tokens["A"] not in response["Location"]
    page = client.get(response["Location"]).content.decode()
    assert "You are answering as Taylor" in page
    other = assignment.responses.get(partner__position="B")
    assert client.get(reverse("assessments:welcome", args=[other.pk])).status_code == 403


def test_only_a_hash_of_the_token_is_stored(world):
    assignment, tokens = make_assignment(world.couple)
    link = assignment.responses.get(partner__position="A").links.get()
    assert tokens["A"] not in (link.token_hash, link.nonce)
    assert len(tokens["A"]) >= 22  # at least 128 bits, url-safe


def test_unknown_link_is_a_readable_404(db):
    response = Client().get(reverse("assessments:open_link", args=["not-a-real-token"]))
    assert response.status_code == 404
    assert "We don't recognise this link" in page_text(response)


def test_a_reissued_link_replaces_the_old_one(world):
    assignment, tokens = make_assignment(world.couple)
    response = assignment.responses.get(partner__position="A")
    new_token = response.issue_link()
    old = Client().get(reverse("assessments:open_link", args=[tokens["A"]]))
    assert old.status_code == 410 and "This link no longer opens" in old.content.decode()
    assert Client().get(reverse("assessments:open_link", args=[new_token])).status_code == 302


def test_an_expired_link_says_so(world):
    assignment, tokens = make_assignment(world.couple, now=timezone.now() - timedelta(days=60))
    response = Client().get(reverse("assessments:open_link", args=[tokens["B"]]))
    assert response.status_code == 410
    assert "This link has expired" in response.content.decode()


def test_the_partner_page_is_refused_without_the_link(world):
    assignment, _ = make_assignment(world.couple)
    response_a = assignment.responses.get(partner__position="A")
    response = Client().get(reverse("assessments:welcome", args=[response_a.pk]))
    assert response.status_code == 403
    assert "Please open your personal link" in response.content.decode()
