"""The product's journeys in a real browser: counselor, both partners, practice admin.

Every test builds its data first (fixtures listed before the browser ones) and makes no database
query while the browser runs; what was stored is checked through the pages a person would see.
"""

import io
import re
from types import SimpleNamespace

import pytest

from tests.clients.factories import answer, bulk_caseload, finished_assignment
from tests.conftest import make_assignment, make_couple, wait_for
from tests.e2e.conftest import PHONE, assert_accessible, shot, sign_in
from tests.e2e.partner import PAGES, SAVED, answer_page, checked, save_and_continue, start

pytestmark = pytest.mark.e2e


@pytest.fixture
def quiet_world(world):
    """Invitations go out whatever the time of day the tests run: no quiet hours."""
    world.practice.quiet_hours_start = world.practice.quiet_hours_end
    world.practice.save(update_fields=["quiet_hours_start"])
    return world


def mailed_to(worker, address):
    """The messages the worker wrote to ``address`` (a file holds every message of one batch)."""
    messages = []
    for path in worker.mails():
        text = path.read_text(errors="replace")
        for message in re.split(r"\n-{70,}\n", text):
            if f"To: {address}" in message:
                messages.append(message)
    return messages


@pytest.fixture
def invited(world):
    """The owner's couple with an open assessment: each partner's personal link."""
    assignment, tokens = make_assignment(world.couple)
    responses = {r.partner.position: r.pk for r in assignment.responses.select_related("partner")}
    return SimpleNamespace(world=world, assignment=assignment, tokens=tokens, responses=responses)


# 1 ---------------------------------------------------------------------------------------------


def test_counselor_adds_a_couple_assigns_the_assessment_and_both_partners_are_mailed(quiet_world, site, new_context):
    world = quiet_world
    server, worker = site
    page = new_context().new_page()
    sign_in(page, server.url, world.owner.email)
    page.goto(f"{server.url}/couples/new/")
    page.get_by_label("Name for this couple").fill("Avery & Sam")
    page.get_by_label("Partner A first name").fill("Avery")
    page.get_by_label("Partner A e-mail").fill("avery@example.com")
    page.get_by_label("Partner B first name").fill("Sam")
    page.get_by_label("Partner B e-mail").fill("sam@example.com")
    page.get_by_role("button", name="Save the couple").click()
    page.get_by_role("heading", name="Avery & Sam").first.wait_for()
    assert_accessible(page, "couple page (no assessment yet)")

    page.get_by_role("button", name="Assign and send invitations").click()
    page.get_by_text("Invitations are on their way to Avery and Sam").wait_for()
    assert page.locator(".assignment-actions .chip", has_text="Invited").count() == 2

    # The worker sends each partner a message carrying their own personal link.
    assert wait_for(lambda: mailed_to(worker, "avery@example.com") and mailed_to(worker, "sam@example.com"), 30)
    avery = "".join(mailed_to(worker, "avery@example.com"))
    sam = "".join(mailed_to(worker, "sam@example.com"))
    links = [re.findall(r"https?://\S+/a/[\w-]+/", text) for text in (avery, sam)]
    assert links[0] and links[1] and not set(links[0]) & set(links[1])


# 2 ---------------------------------------------------------------------------------------------


def test_partner_answers_half_closes_the_browser_and_finishes_on_a_phone_with_nothing_lost(
    invited, server, new_context
):
    base, token, rid = server.url, invited.tokens["A"], invited.responses["A"]

    desktop = new_context()
    page = desktop.new_page()
    page.goto(f"{base}/a/{token}/")
    assert_accessible(page, "welcome (desktop)")
    start(page, base, token, "Taylor", consent=False)
    page.get_by_role("heading", name="Before you begin").wait_for()
    assert_accessible(page, "consent (desktop)")
    page.locator("input[name=share_summary][value=yes]").check()
    page.locator("input[name=understood]").check()
    page.get_by_role("button", name="Begin").click()
    page.wait_for_url("**/section/1/")
    assert_accessible(page, "section (desktop)")
    shot(page, "partner-section")
    for index in range(1, 6):
        answer_page(page)
        save_and_continue(page, rid, index)
    answer_page(page, stop=3)  # page 6: three of five, saved as chosen, then the browser closes
    desktop.close()

    phone = new_context(PHONE)
    page = phone.new_page()
    page.goto(f"{base}/a/{token}/")
    assert_accessible(page, "welcome (phone)")
    page.get_by_role("button", name="I am Taylor, continue").click()
    page.wait_for_url(f"**/respond/{rid}/section/6/")  # where they stopped
    assert checked(page) == 3
    page.goto(f"{base}/respond/{rid}/consent/")
    assert_accessible(page, "consent (phone)")
    for index in range(1, 6):
        page.goto(f"{base}/respond/{rid}/section/{index}/")
        assert checked(page) == page.locator("fieldset.question").count(), f"answers on page {index}"
    page.goto(f"{base}/respond/{rid}/section/6/")
    answer_page(page, start=3)
    page.locator("body").evaluate("() => window.scrollTo(0, 0)")
    shot(page, "partner-phone")
    assert_accessible(page, "section (phone)")
    save_and_continue(page, rid, 6)
    for index in range(7, PAGES):
        answer_page(page)
        save_and_continue(page, rid, index)

    # The safety page: a worrying answer brings the support resources at once.
    assert_accessible(page, "safety section (phone)")
    answer_page(page, value="1", last_value="3")
    page.locator("[data-support-slot] #support-title").wait_for()
    assert_accessible(page, "safety section with support (phone)")
    page.get_by_role("button", name="Save and review").click()
    page.wait_for_url(f"**/respond/{rid}/support/")
    assert_accessible(page, "support (phone)")
    page.goto(f"{base}/respond/{rid}/review/")

    page.get_by_text("You have answered every question").wait_for()
    assert_accessible(page, "review (phone)")
    page.get_by_role("button", name="Submit my answers").click()
    page.get_by_role("heading", name="Your results, Taylor").wait_for()
    assert_accessible(page, "results (phone)")
    shot(page, "partner-results-phone")


# 3 ---------------------------------------------------------------------------------------------


def test_an_answer_chosen_while_the_network_is_down_says_not_saved_then_saves_when_it_returns(
    invited, server, new_context
):
    base, token, rid = server.url, invited.tokens["B"], invited.responses["B"]
    page = new_context().new_page()
    start(page, base, token, "Jordan")
    questions = page.locator("fieldset.question")
    questions.nth(0).locator("input[type=radio][value='2']").check()
    page.locator(SAVED).wait_for()

    page.route("**/save/", lambda route: route.abort("internetdisconnected"))
    questions.nth(0).locator("input[type=radio][value='5']").check()  # changed while offline
    questions.nth(1).locator("input[type=radio][value='3']").check()
    page.locator("[data-autosave-status][data-state=retrying]").wait_for()
    assert "Not saved yet" in page.locator("[data-autosave-status]").inner_text()
    assert questions.nth(1).locator("[data-item-state]").inner_text() == "Not saved yet — retrying"
    assert questions.nth(0).locator("input[type=radio][value='5']").is_checked()

    page.unroute("**/save/")
    page.locator(SAVED).wait_for(timeout=20_000)
    assert questions.nth(1).locator("[data-item-state]").inner_text() == "Saved"

    # A fresh browser (nothing remembered locally) gets both answers from the server.
    again = new_context().new_page()
    start(again, base, token, "Jordan", consent=False)
    again.goto(f"{base}/respond/{rid}/section/1/")
    fresh = again.locator("fieldset.question")
    assert fresh.nth(0).locator("input[type=radio][value='5']").is_checked()
    assert fresh.nth(1).locator("input[type=radio][value='3']").is_checked()
    assert checked(again) == 2


# 4 ---------------------------------------------------------------------------------------------


def focused(page, selector):
    return page.locator(f"{selector}:focus").count() == 1


def tab_to(page, selector, limit=40):
    for _ in range(limit):
        if focused(page, selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def assert_focus_visible(page, selector):
    """The focused element draws a visible focus ring."""
    style = page.locator(f"{selector}:focus").evaluate(
        "el => { const s = getComputedStyle(el); return [s.outlineStyle, s.outlineWidth, s.boxShadow]; }"
    )
    outline_style, outline_width, box_shadow = style
    assert (outline_style != "none" and outline_width != "0px") or box_shadow != "none", f"{selector}: {style}"


@pytest.fixture
def partner_a_finished(invited):
    answer(invited.assignment.responses.get(partner__position="A"), level=4)
    return invited


def test_partner_answers_everything_with_the_keyboard_alone_and_submits(partner_a_finished, server, new_context):
    invited = partner_a_finished
    base, token, rid = server.url, invited.tokens["B"], invited.responses["B"]
    page = new_context().new_page()
    page.goto(f"{base}/a/{token}/")

    tab_to(page, "main button[type=submit]")
    assert_focus_visible(page, "main button[type=submit]")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Before you begin").wait_for()
    tab_to(page, "input[name=share_summary]")
    page.keyboard.press("ArrowDown")  # the second choice: keep results private
    assert page.locator("input[name=share_summary][value=no]").is_checked()
    page.keyboard.press("Tab")
    assert focused(page, "input[name=understood]")
    assert_focus_visible(page, "input[name=understood]")
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    assert focused(page, "main button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/section/1/")

    for index in range(1, PAGES + 1):
        questions = page.locator("fieldset.question")
        count = questions.count()
        if index == PAGES:
            assert_accessible(page, "safety section (desktop)")
        tab_to(page, "fieldset.question input[type=radio]")
        for i in range(count):
            code = questions.nth(i).get_attribute("id")
            assert focused(page, f"#{code} input"), f"focus in question {i + 1} of page {index}"
            if i == 0 and index == 1:
                assert_focus_visible(page, f"#{code} input")
            if index == PAGES:
                page.keyboard.press("Space")  # "Never"
            else:
                page.keyboard.press("ArrowDown")  # the second choice
                page.keyboard.press("ArrowDown")  # the third
            page.keyboard.press("Tab")
            # "Talk about this with your counselor" is the question's next stop, then the next question.
            assert focused(page, f"#{code} details.talk summary"), f"talk toggle of question {i + 1}"
            page.keyboard.press("Tab")
        page.locator(SAVED).wait_for()
        assert checked(page) == count
        button = "main button.primary[type=submit]"
        tab_to(page, button)
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/respond/{rid}/section/{index + 1}/" if index < PAGES else "**/review/")

    assert_accessible(page, "review (desktop)")
    tab_to(page, "main button[type=submit]")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Your results, Jordan").wait_for()
    assert_accessible(page, "results (desktop)")


# 5 ---------------------------------------------------------------------------------------------


@pytest.fixture
def finished(world):
    # Both see most things alike; on five statements partner B disagrees strongly.
    from assessments.models import Instrument

    items = [i for i in Instrument.current().items.all() if i.domain and not i.reverse_keyed and not i.safety_code]
    assignment, responses, _tokens = finished_assignment(
        world.couple, levels=(4, 4), overrides=(None, {item.code: 1 for item in items[:5]})
    )
    return SimpleNamespace(world=world, couple=world.couple, assignment=assignment)


def test_counselor_sees_both_finished_compares_filters_and_downloads_the_pdf(finished, server, new_context):
    base, couple, assignment = server.url, finished.couple, finished.assignment
    page = new_context(accept_downloads=True).new_page()
    sign_in(page, base, finished.world.owner.email)
    page.goto(f"{base}/couples/")
    card = page.locator(".couple-card", has_text=couple.label)
    assert card.locator(".chip.finished", has_text="Both finished").count() == 1
    assert_accessible(page, "caseload (desktop)")

    card.get_by_role("link", name=couple.label).click()
    page.wait_for_url(f"**/couples/{couple.pk}/")
    assert_accessible(page, "couple page (desktop)")
    page.get_by_role("link", name="Compare both partners").first.click()
    page.wait_for_url(f"**/couples/{couple.pk}/assessments/{assignment.pk}/")
    assert_accessible(page, "comparison (desktop)")
    rows = page.locator(".item-table tbody tr")
    everything = rows.count()

    page.get_by_label("Show").select_option("different_views")
    page.wait_for_url("**category=different_views")
    page.locator(".item-table tbody tr:not(.cat-different_views)").first.wait_for(state="detached")
    assert 0 < rows.count() < everything
    assert set(page.locator(".item-table tbody tr .category").all_inner_texts()) == {"Different views"}

    with page.expect_download() as download:
        page.get_by_role("link", name="Download PDF").click()
    assert download.value.suggested_filename.endswith(".pdf")
    with open(download.value.path(), "rb") as pdf:
        assert pdf.read(4) == b"%PDF"


# 6 ---------------------------------------------------------------------------------------------


def test_practice_admin_exports_scores_as_xlsx_and_finds_the_couple(finished, server, new_context):
    from openpyxl import load_workbook

    base, couple = server.url, finished.couple
    page = new_context(accept_downloads=True).new_page()
    sign_in(page, base, finished.world.admin.email)
    page.goto(f"{base}/practice/exports/")
    page.get_by_label("Scores (wide: one row per response)").check()
    page.get_by_label("Format").select_option("xlsx")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export").click()
    assert download.value.suggested_filename.endswith(".xlsx")
    with open(download.value.path(), "rb") as xlsx:
        sheet = load_workbook(io.BytesIO(xlsx.read()), read_only=True).active
        rows = list(sheet.iter_rows(values_only=True))
    header = list(rows[0])
    couple_ids = {str(row[header.index("couple_id")]) for row in rows[1:]}
    partners = sorted(str(row[header.index("partner")]) for row in rows[1:])
    assert str(couple.pk) in couple_ids
    assert partners == ["A", "B"]


# 7 ---------------------------------------------------------------------------------------------


@pytest.fixture
def long_caseload(world):
    bulk_caseload(world.owner, 30)
    make_couple(world.owner, "Zimmer & Quinn", a=("Zoe", "zoe@example.com"), b=("Quinn", "quinn@example.com"))
    return world


def test_caseload_filters_searches_and_pages_in_place_and_back_restores_each_step(long_caseload, server, new_context):
    base = server.url
    page = new_context().new_page()
    sign_in(page, base, long_caseload.owner.email)
    page.goto(f"{base}/couples/")
    cards = page.locator(".couple-card")
    assert cards.count() == 25
    page.get_by_text("Page 1 of 2").wait_for()
    # A marker on the window shows the page is never reloaded: htmx swaps the list in place.
    page.locator("body").evaluate("b => { b.dataset.marker = 'kept'; }")

    page.locator("#couple-list").get_by_role("link", name="Next").click()
    page.wait_for_url("**page=2*")
    page.get_by_text("Page 2 of 2").wait_for()
    assert cards.count() == 32 - 25  # 30 couples, the world's couple and Zimmer & Quinn

    page.get_by_label("Search").fill("Zimmer")
    page.wait_for_url("**q=Zimmer*")
    page.locator(".couple-card h2", has_text="Couple 0000").wait_for(state="detached")
    assert page.locator(".couple-card h2").all_inner_texts() == ["Zimmer & Quinn"]

    page.get_by_label("Search").fill("")
    page.get_by_label("Show").select_option("overdue")
    page.wait_for_url(re.compile(r".*status=overdue.*"))
    page.locator(".couple-card:not(.is-overdue)").first.wait_for(state="detached")
    assert 0 < cards.count() < 25
    assert page.locator("body[data-marker=kept]").count() == 1

    page.go_back()
    page.wait_for_url("**q=Zimmer*")
    cards.nth(1).wait_for(state="detached")
    assert page.locator(".couple-card h2").all_inner_texts() == ["Zimmer & Quinn"]
    assert page.get_by_label("Search").input_value() == "Zimmer"
    assert page.get_by_label("Show").input_value() == ""
    page.go_back()
    page.wait_for_url("**page=2*")
    page.get_by_text("Page 2 of 2").wait_for()
    assert cards.count() == 7
    assert page.locator("body[data-marker=kept]").count() == 1
