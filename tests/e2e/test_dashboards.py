"""The counselor's morning, in a real browser, on the demo practice."""

import os

import pytest
from django.core.management import call_command

from tests.e2e.conftest import assert_accessible, pdf_shot, shot

pytestmark = pytest.mark.e2e


@pytest.fixture
def demo(transactional_db):
    call_command("seed_demo", force=True, stdout=open(os.devnull, "w"))  # noqa: SIM115


# The browser fixture comes last: the data exists before Playwright's event loop starts in this
# thread, and the test makes no query while the browser runs (a query from inside that loop
# would open a connection that is never closed).
def test_demo_counselor_filters_compares_downloads_and_sees_the_trend(server, demo, chromium):
    live_server = server
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "counselor@demo.example")
    page.fill("input[name=password]", "connection-demo")
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/couples/")
    cards = page.locator(".couple-card h2")
    assert_accessible(page, "demo caseload (desktop)")
    shot(page, "caseload")
    assert sorted(cards.all_inner_texts()) == sorted(
        ["Rivera & Chen", "Okafor & Lind", "Patel & Morgan", "Nguyen & Brooks", "Silva & Novak"]
    )

    # Filtering refreshes the list in place and keeps the filter in the address.
    page.select_option("select[name=status]", "overdue")
    page.wait_for_url("**/couples/?*status=overdue*")
    page.locator(".couple-card").nth(2).wait_for(state="detached")
    # Patel & Morgan's safety alert is not yet seen: it stays first in every list until it is.
    assert cards.all_inner_texts() == ["Patel & Morgan", "Silva & Novak"]
    page.go_back()
    page.locator(".couple-card").nth(4).wait_for()

    # A finished couple: the trend across two administrations, then both partners side by side.
    page.click("text=Nguyen & Brooks")
    assert page.locator("figure.trend-big svg polyline").count() == 2
    assert page.locator(".change-card").count() == 2
    assert_accessible(page, "demo couple page (desktop)")
    shot(page, "couple")
    page.locator("text=Compare both partners").first.click()
    assert page.locator("h1").inner_text() == "Nguyen & Brooks: side by side"
    assert page.locator(".item-table tbody tr").count() == 30
    assert_accessible(page, "demo comparison (desktop)")
    shot(page, "comparison")
    page.select_option("select[name=category]", "different_views")
    page.wait_for_url("**category=different_views")
    page.locator(".item-table tbody tr:not(.cat-different_views)").first.wait_for(state="detached")
    with page.expect_download() as download:
        page.click("text=Download PDF")
    path = download.value.path()
    with open(path, "rb") as pdf:
        assert pdf.read(4) == b"%PDF"
    pdf_shot(path, "comparison-pdf")
    page.close()


def test_on_a_phone_the_caseload_filters_fold_away_so_the_first_couple_is_on_the_first_screen(server, demo, chromium):
    phone = chromium.new_page(viewport={"width": 390, "height": 844})
    phone.goto(f"{server.url}/accounts/login/")
    phone.fill("input[name=username]", "counselor@demo.example")
    phone.fill("input[name=password]", "connection-demo")
    phone.click("button[type=submit]")
    phone.goto(f"{server.url}/couples/")
    first = phone.locator(".couple-card").first
    box = first.locator("h2").bounding_box()
    assert box is not None and box["y"] + box["height"] <= 844, "the first couple is below the first screen"
    search = phone.locator("input[name=q]")
    assert not search.is_visible()
    phone.get_by_text("Filters", exact=True).click()
    assert search.is_visible()
    assert_accessible(phone, "caseload with its filters open (phone)")

    desk = chromium.new_page(viewport={"width": 1280, "height": 900})
    desk.context.add_cookies(phone.context.cookies())
    desk.goto(f"{server.url}/couples/")
    assert desk.locator("input[name=q]").is_visible()  # nothing to unfold on a desk
    assert not desk.get_by_text("Filters", exact=True).is_visible()
