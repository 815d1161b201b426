"""Two partners, two languages, one comparison: in a real browser against a live server."""

from types import SimpleNamespace

import pytest

from assessments import comparison, translations
from clients.models import Partner
from tests.conftest import make_assignment
from tests.e2e.conftest import sign_in
from tests.e2e.partner import PAGES, answer_page

pytestmark = pytest.mark.e2e

SPANISH_COM1 = "Hablar con mi pareja me resulta fácil y natural."
ENGLISH_COM1 = "Talking with my partner feels easy and natural."


@pytest.fixture
def bilingual(world):
    Partner.objects.filter(couple=world.couple, position="A").update(language="es")
    assignment, tokens = make_assignment(world.couple)
    responses = {r.partner.position: r.pk for r in assignment.responses.select_related("partner")}
    return SimpleNamespace(world=world, assignment=assignment, tokens=tokens, responses=responses)


def lang_of(page):
    return page.locator("html").get_attribute("lang")


def answer_everything_in_the_browser(page, base, token, response_id, value, language, first_statement):
    """Open the link, confirm, consent, answer every page (safety "never") and submit, by selectors
    that do not depend on the page's language; check the language of every page on the way."""
    page.goto(f"{base}/a/{token}/")
    assert lang_of(page) == language
    page.locator("main button[type=submit]").click()
    page.locator("input[name=share_summary][value=yes]").check()
    page.locator("input[name=understood]").check()
    page.locator("main button[type=submit]").click()
    page.wait_for_url("**/section/1/")
    assert first_statement in page.locator("main").inner_text()
    for index in range(1, PAGES + 1):
        assert lang_of(page) == language, f"page {index}"
        answer_page(page, value="1" if index == PAGES else value)
        page.locator("main button.primary[type=submit]").click()
        page.wait_for_url(f"**/respond/{response_id}/section/{index + 1}/" if index < PAGES else "**/review/")
    assert lang_of(page) == language
    page.locator("main button[type=submit]").click()
    page.wait_for_url(lambda url: "/review/" not in url)
    assert lang_of(page) == language


def test_a_answers_in_spanish_b_in_english_and_the_counselor_compares_every_statement(bilingual, server, new_context):
    base, invited = server.url, bilingual
    a = new_context().new_page()
    answer_everything_in_the_browser(a, base, invited.tokens["A"], invited.responses["A"], "4", "es", SPANISH_COM1)
    b = new_context().new_page()
    answer_everything_in_the_browser(b, base, invited.tokens["B"], invited.responses["B"], "2", "en", ENGLISH_COM1)

    page = new_context().new_page()
    sign_in(page, base, invited.world.owner.email)
    couple, assignment = invited.world.couple, invited.assignment
    page.goto(f"{base}/couples/{couple.pk}/assessments/{assignment.pk}/")
    assert lang_of(page) == "en"
    header = page.locator(".answered-in").inner_text()
    assert "Taylor answered in Spanish (translated, not yet validated)" in header
    assert "Jordan answered in English" in header
    report = comparison.report_of(assignment, comparison.responses_by_position(assignment))
    rows = page.locator(".item-table tbody tr")
    assert rows.count() == len(report.items) > 20
    statements = rows.locator("td:first-child").all_inner_texts()
    assert [s.removesuffix(" (warning sign)") for s in statements] == [
        row.text for group in report.grouped() for row in group["rows"]
    ]
    english = {
        label for scale in assignment.instrument.definition["scales"].values() for label in scale["labels"].values()
    }
    spanish_labels = {
        label
        for scale in translations.texts(assignment.instrument, "es")["scales"].values()
        for label in scale["labels"].values()
    } - english
    for i in range(rows.count()):
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert cells[1] in english and cells[2] in english, cells
    body = page.locator("main").inner_text()
    assert SPANISH_COM1 not in body and not any(label in body for label in spanish_labels)
