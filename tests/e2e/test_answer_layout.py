"""The answer page on a desk and on a phone: the scale reads left to right, questions stay in their cards."""

import pytest

from tests.conftest import make_assignment
from tests.e2e.conftest import DESKTOP, PHONE
from tests.e2e.partner import start

pytestmark = pytest.mark.e2e

LAYOUT = """
() => [...document.querySelectorAll('fieldset.question')].map((box) => {
  const card = box.getBoundingClientRect();
  const title = box.querySelector('legend').getBoundingClientRect();
  const scale = [...box.querySelectorAll('.choice:not(.declined)')].map((c) => c.getBoundingClientRect());
  const tops = scale.map((r) => Math.round(r.top));
  const lefts = scale.map((r) => r.left);
  return {rows: new Set(tops).size, ordered: lefts.every((x, i) => i === 0 || x > lefts[i - 1]),
          titleInside: title.top >= card.top + 1 && title.bottom <= card.bottom, count: tops.length};
})
"""


@pytest.fixture
def token(world):
    _assignment, tokens = make_assignment(world.couple)
    return tokens["A"]


def test_five_answers_on_one_row_on_a_desk_and_every_question_inside_its_card(token, server, new_context):
    page = new_context(DESKTOP).new_page()
    start(page, server.url, token, "Taylor")
    for index in (1, 2):  # the second part has the longest statements
        page.goto(f"{page.url.rsplit('/section/', 1)[0]}/section/{index}/")
        for question in page.evaluate(LAYOUT):
            assert question["count"] == 5
            assert question["rows"] == 1 and question["ordered"], question
            assert question["titleInside"], question


def test_on_a_phone_the_answers_stack_and_the_question_stays_inside_its_card(token, server, new_context):
    page = new_context(PHONE).new_page()
    start(page, server.url, token, "Taylor")
    for question in page.evaluate(LAYOUT):
        assert question["rows"] == 5
        assert question["titleInside"], question
