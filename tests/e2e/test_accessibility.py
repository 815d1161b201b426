"""axe-core on every staff page, at desktop and phone size, with real content on each.

The partner's pages are scanned along the journeys (tests/e2e/test_journeys.py) where they are
reached; the support page at desktop size is scanned here.
"""

from types import SimpleNamespace

import pytest

from tests.clients.factories import answer, finished_assignment
from tests.conftest import make_assignment, make_couple
from tests.e2e.conftest import DESKTOP, PHONE, assert_accessible, shot, sign_in

pytestmark = pytest.mark.e2e

VIEWPORTS = (("desktop", DESKTOP), ("phone", PHONE))


@pytest.fixture
def practice_with_history(world):
    """A finished couple to compare, one still answering, and a partner whose answers ask for support."""
    assignment, _responses, _tokens = finished_assignment(world.couple, levels=(4, 3))
    waiting = make_couple(world.owner, "Morgan & Lee", a=("Morgan", "morgan@example.com"), b=("Lee", "lee@example.com"))
    open_assignment, tokens = make_assignment(waiting)
    worried = open_assignment.responses.get(partner__position="A")
    answer(worried, level=3, overrides={"S7": 3}, finish=False)
    worried.safety_level = "concern"
    worried.save(update_fields=["safety_level"])
    return SimpleNamespace(world=world, assignment=assignment, token=tokens["A"], worried=worried.pk)


def test_counselor_pages_have_no_serious_accessibility_problem_on_desktop_or_phone(
    practice_with_history, server, new_context
):
    data, base = practice_with_history, server.url
    couple, assignment = data.world.couple, data.assignment
    pages = {
        "caseload": "/couples/",
        "inbox": "/inbox/",  # before the comparison, whose visit clears "not yet reviewed"
        "couple": f"/couples/{couple.pk}/",
        "comparison": f"/couples/{couple.pk}/assessments/{assignment.pk}/",
        "add-couple": "/couples/new/",
        "assign": f"/couples/{couple.pk}/assign/",
    }
    for size, viewport in VIEWPORTS:
        page = new_context(viewport).new_page()
        sign_in(page, base, data.world.owner.email)
        for name, path in pages.items():
            page.goto(base + path)
            assert_accessible(page, f"{name} ({size})")
            if size == "phone" and name in ("caseload", "comparison"):
                shot(page, f"{name}-phone")


def test_practice_admin_pages_have_no_serious_accessibility_problem_on_desktop_or_phone(
    practice_with_history, server, new_context
):
    data, base = practice_with_history, server.url
    paths = ["", "invite/", "couples/", "settings/", "statistics/", "exports/", "audit/"]
    for size, viewport in VIEWPORTS:
        page = new_context(viewport).new_page()
        sign_in(page, base, data.world.admin.email)
        for path in paths:
            page.goto(f"{base}/practice/{path}")
            assert_accessible(page, f"/practice/{path} ({size})")
        if size == "desktop":
            page.goto(f"{base}/practice/")
            shot(page, "practice-overview")


def test_support_page_has_no_serious_accessibility_problem_on_desktop(practice_with_history, server, new_context):
    data, base = practice_with_history, server.url
    page = new_context().new_page()
    page.goto(f"{base}/a/{data.token}/")
    page.get_by_role("button", name="I am Morgan, continue").click()
    page.goto(f"{base}/respond/{data.worried}/support/")
    page.locator("#support-title").first.wait_for()
    assert_accessible(page, "support (desktop)")
