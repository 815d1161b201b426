"""In-office answering on "this device" in a real browser: the counselor marks the tablet, hands it to
partner A without a code, the screen clears when A submits, the counselor signs in again to hand it
to partner B, and B's session opens none of A's pages. Nothing of the visit travels in a URL.
"""

from types import SimpleNamespace

import pytest

from assessments.models import Response
from tests.conftest import make_assignment
from tests.e2e.conftest import PHONE, sign_in
from tests.e2e.test_in_office_browser import answer_and_submit

pytestmark = pytest.mark.e2e


@pytest.fixture
def office_world(world, server):
    assignment, _tokens = make_assignment(world.couple)
    responses = {r.partner.position: r.pk for r in Response.objects.filter(assignment=assignment)}
    return SimpleNamespace(world=world, responses=responses)


def hand_to(tablet, base, couple_pk, first_name, rid):
    tablet.goto(f"{base}/couples/{couple_pk}/")
    tablet.get_by_role("button", name=f"On this device for {first_name}").click()
    tablet.get_by_role("heading", name=f"You are answering as {first_name}").wait_for()
    assert f"/respond/{rid}/" in tablet.url and "?" not in tablet.url
    tablet.get_by_role("button", name=f"I am {first_name}, continue").click()
    tablet.get_by_role("heading", name="Before you begin").wait_for()
    tablet.locator("input[name=share_summary][value=yes]").check()
    tablet.locator("input[name=understood]").check()
    tablet.get_by_role("button", name="Begin").click()
    tablet.wait_for_url(f"**/respond/{rid}/section/1/")


def test_a_marked_tablet_is_handed_to_each_partner_in_turn_without_a_code(office_world, server, new_context):
    base, world = server.url, office_world.world
    rid_a, rid_b = office_world.responses["A"], office_world.responses["B"]
    tablet = new_context(viewport=PHONE).new_page()
    sign_in(tablet, base, world.owner.email)
    tablet.goto(f"{base}/here/device/")
    tablet.get_by_role("button", name="Use this browser as the practice's tablet").click()
    tablet.get_by_text("This browser is now the practice's tablet.").wait_for()

    hand_to(tablet, base, world.couple.pk, "Taylor", rid_a)
    # The counselor is signed out on the tablet: the caseload asks for a sign-in.
    tablet.goto(f"{base}/couples/")
    assert "/login/" in tablet.url
    answer_and_submit(tablet, base, rid_a)
    text = tablet.locator("body").inner_text()
    assert "hand the device back" in text and "Taylor" not in text

    sign_in(tablet, base, world.owner.email)
    hand_to(tablet, base, world.couple.pk, "Jordan", rid_b)
    for path in ("", "consent/", "section/1/", "review/", "results/", "support/"):
        tablet.goto(f"{base}/respond/{rid_a}/{path}")
        body = tablet.locator("body").inner_text()
        assert "Please open your personal link" in body, path
        assert "Taylor" not in body, path
    answer_and_submit(tablet, base, rid_b)
    assert "hand the device back" in tablet.locator("body").inner_text()
