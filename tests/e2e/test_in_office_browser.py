"""In-office answering in a real browser: partner A answers with a code on the practice's device, the
screen clears, partner B answers on the same browser, and B's session opens none of A's pages.

Data is built first (fixtures before the browser); the browser then only does what a person can.
"""

import re
from types import SimpleNamespace

import pytest
from django.core.cache import cache

from assessments import office
from assessments.models import Response, TalkFlag
from tests.conftest import make_assignment
from tests.e2e.conftest import PHONE, assert_accessible, sign_in
from tests.e2e.partner import PAGES, answer_page, save_and_continue

pytestmark = pytest.mark.e2e

NOTE = "We argue about the holidays"


@pytest.fixture
def office_world(world, server):
    cache.delete(office._failures_key("127.0.0.1"))  # a fresh device address for this test
    assignment, tokens = make_assignment(world.couple)
    responses = {r.partner.position: r.pk for r in Response.objects.filter(assignment=assignment)}
    return SimpleNamespace(world=world, assignment=assignment, responses=responses)


def make_code(counselor_page, base, couple_pk, first_name):
    counselor_page.goto(f"{base}/couples/{couple_pk}/")
    counselor_page.get_by_role("button", name=f"Answer here for {first_name}").click()
    counselor_page.get_by_role("heading", name=f"A code for {first_name} to answer here").wait_for()
    shown = counselor_page.locator(".office-code strong").inner_text()
    assert re.fullmatch(r"\d{3} \d{3}", shown), shown
    assert shown.replace(" ", "") not in counselor_page.url
    return shown


def open_with_code(page, base, code, first_name, rid):
    page.goto(f"{base}/here/")
    page.get_by_label("Your code").fill(code)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name=f"You are answering as {first_name}").wait_for()
    assert code.replace(" ", "") not in page.url
    page.get_by_role("button", name=f"I am {first_name}, continue").click()
    page.get_by_role("heading", name="Before you begin").wait_for()
    page.locator("input[name=share_summary][value=yes]").check()
    page.locator("input[name=understood]").check()
    page.get_by_role("button", name="Begin").click()
    page.wait_for_url(f"**/respond/{rid}/section/1/")


def answer_and_submit(page, base, rid, flag=False):
    page.goto(f"{base}/respond/{rid}/section/1/")
    if flag:
        talk = page.locator("fieldset.question").first.locator("details.talk")
        talk.locator("summary").click()
        talk.get_by_label("I'd like to talk about this").check()
        talk.locator("textarea").fill(NOTE)
        talk.locator("textarea").blur()
        talk.locator("[data-save-state=saved], [data-talk-state]:text('Saved')").first.wait_for()
    for index in range(1, PAGES):
        answer_page(page)
        save_and_continue(page, rid, index)
    answer_page(page, value="1")  # the safety page: nothing worrying
    page.get_by_role("button", name="Save and review").click()
    page.wait_for_url(f"**/respond/{rid}/review/")
    page.get_by_role("button", name="Submit my answers").click()
    page.wait_for_url(f"{base}/here/")


def test_two_partners_answer_in_turn_on_one_device_and_neither_reaches_the_other(office_world, server, new_context):
    base, world = server.url, office_world.world
    rid_a, rid_b = office_world.responses["A"], office_world.responses["B"]
    counselor = new_context().new_page()
    sign_in(counselor, base, world.owner.email)
    device = new_context(viewport=PHONE).new_page()

    open_with_code(device, base, make_code(counselor, base, world.couple.pk, "Taylor"), "Taylor", rid_a)
    answer_and_submit(device, base, rid_a, flag=True)
    # The screen cleared: the neutral code page, nothing of Taylor's response.
    text = device.locator("body").inner_text()
    assert "hand the device back" in text and "Taylor" not in text and "Your results" not in text
    assert_accessible(device, "in-office code page (phone)")
    device.go_back()
    device.wait_for_load_state()
    assert "Taylor" not in device.locator("body").inner_text()
    assert TalkFlag.objects.get(response_id=rid_a).note == NOTE

    open_with_code(device, base, make_code(counselor, base, world.couple.pk, "Jordan"), "Jordan", rid_b)
    # Jordan's session, on Taylor's pages: nothing opens, nothing of Taylor shows.
    for path in ("", "consent/", "section/1/", "review/", "results/", "support/"):
        device.goto(f"{base}/respond/{rid_a}/{path}")
        body = device.locator("body").inner_text()
        assert "Please open your personal link" in body, path
        assert "Taylor" not in body and NOTE not in body, path
    answer_and_submit(device, base, rid_b)
    assert "hand the device back" in device.locator("body").inner_text()
    assert Response.objects.filter(pk__in=[rid_a, rid_b], submitted_at__isnull=False).count() == 2
