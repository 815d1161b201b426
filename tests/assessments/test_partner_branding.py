"""Partner pages carry the name of the practice that sent the link, and no way into the staff side."""

import pytest
from django.urls import reverse

from tests.clients.factories import answer, partner_client, visible_text
from tests.conftest import make_assignment


@pytest.fixture
def partner(world):
    assignment, tokens = make_assignment(world.couple)
    response = assignment.responses.get(partner__position="A")
    answer(response, level=4, finish=False, upto=3)
    return response, partner_client(tokens["A"])


def test_every_partner_page_is_branded_with_the_practice_and_links_to_no_staff_page(world, partner):
    response, client = partner
    for name, args in (("welcome", []), ("consent", []), ("section", [1]), ("review", [])):
        page = client.get(reverse(f"assessments:{name}", args=[response.pk, *args]))
        assert page.status_code == 200, name
        html = page.content.decode()
        assert '<span class="brand">Riverside Counseling</span>' in html, name
        assert "Connection Practice" not in visible_text(page), name
        for staff in (reverse("home"), reverse("login"), reverse("assessments:caseload")):
            assert f'href="{staff}"' not in html, f"{name} links to {staff}"


def test_a_page_without_the_partners_session_names_no_practice(world, partner):
    response, _client = partner
    page = partner_client("not-a-token").get(reverse("assessments:finished"))
    assert "Riverside" not in visible_text(page)
    assert f'href="{reverse("home")}"' not in page.content.decode()
