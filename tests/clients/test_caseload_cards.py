"""The caseload's cards are rendered once per process for what they show (assessments/caseload.py)."""

import copy
import re
import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from assessments import caseload
from clients.models import Couple
from tests.clients.factories import answer, finished_assignment
from tests.conftest import client_for, make_assignment, make_couple, page_text

CASELOAD = reverse("assessments:caseload")


@pytest.fixture(autouse=True)
def fresh_cards():
    caseload._render_card.cache_clear()
    yield
    caseload._render_card.cache_clear()


def couple_list(response):
    """The list of cards as a person reads it (the page around it carries a per-request nonce)."""
    text = page_text(response)
    start = text.index('<ul class="couple-list">')
    return text[start : text.index("</section>", start)]


def rows_of(user, now=None):
    return caseload.attach_overview(caseload.caseload_queryset(user, now=now))


def test_a_second_view_renders_no_card_again_and_shows_the_same_cards(world):
    finished_assignment(world.couple, levels=(4, 3))
    other = make_couple(world.owner, "Rivera & Chen", a=("Ana", "ana@x.example"), b=("Bo", "bo@x.example"))
    make_assignment(other, days=5)
    client = client_for(world.owner)
    first = client.get(CASELOAD)
    after_first = caseload._render_card.cache_info()
    assert (after_first.misses, after_first.hits) == (2, 0)
    second = client.get(CASELOAD)
    after_second = caseload._render_card.cache_info()
    assert (after_second.misses, after_second.hits) == (2, 2)
    assert couple_list(second) == couple_list(first)
    assert "Rivera & Chen" in couple_list(second) and "Taylor & Jordan" in couple_list(second)


def test_a_partners_progress_shows_at_the_next_view(world):
    assignment, _ = make_assignment(world.couple, days=5)
    client = client_for(world.owner)
    assert "In progress" not in couple_list(client.get(CASELOAD))
    answer(assignment.responses.get(partner__position="A"), upto=11, finish=False)
    cards = couple_list(client.get(CASELOAD))
    assert "In progress · 20%" in cards  # 11 of 55 statements
    assert cards.count("In progress") == 1
    answer(assignment.responses.get(partner__position="B"), upto=22, finish=False)
    cards = couple_list(client.get(CASELOAD))
    assert "In progress · 20%" in cards and "In progress · 40%" in cards


def test_a_renamed_partner_and_an_archived_couple_show_at_the_next_view(world):
    client = client_for(world.owner)
    assert "Taylor" in couple_list(client.get(CASELOAD))
    partner = world.couple.partners.get(position="A")
    partner.first_name = "Tayla"
    partner.save()
    cards = couple_list(client.get(CASELOAD))
    assert "</span>Tayla </span>" in cards and "</span>Taylor </span>" not in cards
    Couple.objects.filter(pk=world.couple.pk).update(status=Couple.Status.ARCHIVED)
    caseload.refresh(world.couple.pk)
    assert "Archived" in couple_list(client.get(CASELOAD, {"status": "archived"}))


def test_a_due_date_that_passes_turns_the_card_overdue_with_nothing_written(world):
    make_assignment(world.couple, days=2)
    (today,) = rows_of(world.owner)
    assert "Due " in caseload.render_card(today) and "Overdue" not in caseload.render_card(today)
    (later,) = rows_of(world.owner, now=timezone.now() + timedelta(days=3))
    assert "Overdue since" in caseload.render_card(later)


def test_the_due_date_is_the_practices_day_whatever_was_rendered_before(world):
    make_assignment(world.couple, now=datetime(2027, 3, 9, 23, 30, tzinfo=UTC), days=1)
    (row,) = rows_of(world.owner, now=datetime(2027, 3, 1, tzinfo=UTC))
    with timezone.override(zoneinfo.ZoneInfo("UTC")):
        assert "10 Mar 2027" in caseload.render_card(row)
    with timezone.override(zoneinfo.ZoneInfo("Pacific/Auckland")):
        assert "11 Mar 2027" in caseload.render_card(row)


def test_the_card_template_reads_nothing_but_its_card(world, settings):
    finished_assignment(world.couple, levels=(2, 2), days_ago=60)
    finished_assignment(world.couple, levels=(5, 4))
    late = make_couple(world.owner, "Late & Later", a=("Lou", "lou@x.example"), b=("Lee", "lee@x.example"))
    assignment, _ = make_assignment(late, days=-3, now=timezone.now() - timedelta(days=10))
    answer(assignment.responses.get(partner__position="A"), upto=11, finish=False)
    templates = copy.deepcopy(settings.TEMPLATES)
    templates[0]["OPTIONS"]["string_if_invalid"] = "MISSING[%s]"
    settings.TEMPLATES = templates
    cards = [caseload.render_card(row) for row in rows_of(world.owner)]
    assert len(cards) == 2
    assert not [m for card in cards for m in re.findall(r"MISSING\[[^\]]*\]", card)]
    assert "+50 · reliable improvement" in cards[0] + cards[1] and "Overdue since" in cards[0] + cards[1]
