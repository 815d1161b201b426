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


@pytest.fixture
def worried(world):
    """A partner whose safety answers ask for support, seen through their own link."""
    assignment, tokens = make_assignment(world.couple)
    response = assignment.responses.get(partner__position="A")
    answer(response, level=3, overrides={"S7": 3}, finish=False)
    response.safety_level = "concern"
    response.save(update_fields=["safety_level"])
    return response, partner_client(tokens["A"])


def support_page(response, client):
    page = client.get(reverse("assessments:support", args=[response.pk]))
    assert page.status_code == 200
    return page.content.decode()


def test_support_numbers_are_tap_to_call_links_from_the_practices_settings(world, worried):
    response, client = worried
    html = support_page(response, client)
    assert '<a href="tel:911">911</a>' in html
    assert '<a href="tel:18007997233">1-800-799-7233</a>' in html

    world.practice.emergency_number = "112"
    world.practice.support_line_text = "Hilfetelefon Gewalt gegen Frauen, rund um die Uhr"
    world.practice.support_line_numbers = "+49 116 016, 08000 116 016"
    world.practice.save()
    html = support_page(response, client)
    assert '<a href="tel:112">112</a>' in html
    assert "Hilfetelefon Gewalt gegen Frauen" in html
    assert '<a href="tel:+49116016">+49 116 016</a> or <a href="tel:08000116016">08000 116 016</a>' in html
    assert "799-7233" not in html
    assert "tel:911" not in html


def test_a_practice_without_a_support_line_still_points_to_the_counselor(world, worried):
    response, client = worried
    world.practice.support_line_text = world.practice.support_line_numbers = world.practice.emergency_number = ""
    world.practice.save()
    html = support_page(response, client)
    assert "call your local emergency number" in html
    assert "your counselor can help you find a local service" in html
    assert "tel:" not in html
