"""Progress moves while a partner answers: the bar, this part's count and the "saved" line."""

import re

import pytest

from tests.conftest import make_assignment
from tests.e2e.conftest import PHONE
from tests.e2e.partner import SAVED, answer_page, start

pytestmark = pytest.mark.e2e


@pytest.fixture
def tokens(world):
    _assignment, tokens = make_assignment(world.couple)
    return tokens


def test_the_bar_and_the_part_count_move_as_each_answer_is_saved_without_reloading(tokens, server, new_context):
    page = new_context(PHONE).new_page()
    start(page, server.url, tokens["A"], "Taylor")
    label = page.locator("[data-progress-label]")
    count = page.locator(".section-nav li[aria-current] .muted")
    total = int(re.search(r"of (\d+) questions", label.inner_text()).group(1))
    questions = page.locator("fieldset.question").count()
    assert label.inner_text() == f"0 of {total} questions answered"
    assert count.inner_text() == f"0/{questions}"
    assert page.locator("[data-autosave-status]").inner_text() == "Each answer is saved as you choose it."

    answer_page(page, 0, 2)
    assert label.inner_text() == f"2 of {total} questions answered"
    assert page.locator("#answer-progress").evaluate("bar => bar.value") == 2
    assert count.inner_text() == f"2/{questions}"

    # Changing an answer already saved does not count it twice.
    page.locator("fieldset.question").nth(0).locator("input[type=radio][value='2']").check()
    page.locator(SAVED).wait_for()
    assert label.inner_text() == f"2 of {total} questions answered"

    answer_page(page, 2)
    assert label.inner_text() == f"{questions} of {total} questions answered"
    assert count.inner_text() == "done"
    # What the page shows is what the server stored: a reload says the same.
    page.reload()
    assert page.locator("[data-progress-label]").inner_text() == f"{questions} of {total} questions answered"
    assert page.locator(".section-nav li[aria-current] .muted").inner_text() == "done"


def test_without_javascript_the_page_says_answers_are_saved_with_the_button(tokens, server, new_context):
    page = new_context(PHONE, java_script_enabled=False).new_page()
    page.goto(f"{server.url}/a/{tokens['A']}/")
    page.get_by_role("button", name="I am Taylor, continue").click()
    page.locator("input[name=share_summary][value=yes]").check()
    page.locator("input[name=understood]").check()
    page.get_by_role("button", name="Begin").click()
    page.wait_for_url("**/section/1/")
    status = page.locator("[data-autosave-status]").inner_text()
    assert status == "Answers are saved when you press Save and continue."
    assert "as you choose" not in page.locator("main").inner_text()
