"""The other partner picks up this partner's phone: in a real browser, nothing of the response opens.

Data is built first (fixtures before the browser); the browser then only does what a person can.
"""

from types import SimpleNamespace

import pytest

from tests.clients.factories import finished_assignment
from tests.conftest import make_assignment
from tests.e2e.conftest import PHONE, sign_in
from tests.e2e.partner import answer_page, start

pytestmark = pytest.mark.e2e

SECRETS = ("Taylor", "Feeling safe", "Your safety", "Your results", "Connection Index")


def shows_nothing_of_the_response(page):
    text = page.locator("body").inner_text()
    return not [s for s in SECRETS if s in text]


@pytest.fixture
def phone_world(world, server):
    """An open administration, and a practice whose quick exit lands on a page of this server."""
    world.practice.quick_exit_url = f"{server.url}/healthz"
    world.practice.save()
    assignment, tokens = make_assignment(world.couple)
    return SimpleNamespace(world=world, assignment=assignment, tokens=tokens)


def test_after_a_quick_exit_back_and_every_partner_url_show_nothing(phone_world, server, new_context):
    base = server.url
    page = new_context(viewport=PHONE).new_page()
    start(page, base, phone_world.tokens["A"], "Taylor")
    answer_page(page, 0, 2)
    section_url = page.url
    assert "Questions, page 1 of" in page.title()
    page.get_by_role("button", name="Quick exit").click()
    page.wait_for_url(f"{base}/healthz")
    # Back: the answering page was replaced in the history; what is left asks the server again.
    page.go_back()
    page.wait_for_load_state()
    assert shows_nothing_of_the_response(page), page.url
    response_id = section_url.split("/respond/")[1].split("/")[0]
    for path in ("", "consent/", "section/1/", "section/11/", "review/", "results/", "support/"):
        page.goto(f"{base}/respond/{response_id}/{path}")
        assert shows_nothing_of_the_response(page), path
        assert "Please open your personal link" in page.locator("body").inner_text()


def test_three_escapes_are_a_quick_exit_for_the_keyboard(phone_world, server, new_context):
    base = server.url
    page = new_context().new_page()
    start(page, base, phone_world.tokens["B"], "Jordan")
    for _ in range(3):
        page.keyboard.press("Escape")
    page.wait_for_url(f"{base}/healthz")


@pytest.fixture
def submitted(world):
    assignment, responses, tokens = finished_assignment(world.couple)
    return SimpleNamespace(world=world, assignment=assignment, responses=responses, tokens=tokens)


def test_a_submitted_link_whose_access_the_counselor_ended_opens_nothing(submitted, server, new_context):
    base = server.url
    world = submitted.world
    taylor = new_context(viewport=PHONE).new_page()
    taylor.goto(f"{base}/a/{submitted.tokens['A']}/")
    taylor.get_by_role("button", name="I am Taylor, continue").click()
    taylor.wait_for_url("**/results/")
    counselor = new_context().new_page()
    sign_in(counselor, base, world.owner.email)
    counselor.goto(f"{base}/couples/{world.couple.pk}/")
    counselor.get_by_role("button", name="End access for Taylor").click()
    counselor.get_by_text("Taylor's link no longer opens anything").wait_for()
    # On Taylor's phone, in the hands of whoever holds it: reload, then the link from the e-mail.
    taylor.reload()
    assert shows_nothing_of_the_response(taylor)
    taylor.goto(f"{base}/a/{submitted.tokens['A']}/")
    assert "This link no longer opens" in taylor.locator("body").inner_text()
    assert shows_nothing_of_the_response(taylor)
