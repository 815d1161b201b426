"""One rounding rule for every displayed score: half up, so 52.5 is 53 wherever a person reads it."""

import re

import pytest
from django.urls import reverse

from assessments import caseload, charts, scoring
from assessments.models import Score
from assessments.workflows import release_summary
from tests.clients.factories import finished_assignment, partner_client, visible_text
from tests.conftest import client_for


@pytest.mark.parametrize(
    ("stored", "shown"), [(52.5, 53), (52.49, 52), (53.5, 54), (0.5, 1), (99.5, 100), (-2.5, -3), (70.0, 70)]
)
def test_the_rule_rounds_halves_up_not_to_even(stored, shown):
    assert scoring.whole(stored) == shown
    assert round(52.5) == 52  # what Python's own round() would have shown


@pytest.fixture
def half_way(world):
    """A finished couple whose stored scores all sit on a half: Taylor 52.5 everywhere, Jordan 67.5."""
    assignment, responses, tokens = finished_assignment(world.couple, levels=(3, 4))
    for position, value in (("A", 52.5), ("B", 67.5)):
        score = Score.objects.get(response=responses[position])
        score.domains = dict.fromkeys(score.domains, value)
        score.connection_index = value
        score.save(update_fields=["domains", "connection_index"])
    caseload.refresh(world.couple.pk)  # as recompute_scores does after changing stored scores
    release_summary(assignment, responses)
    return assignment, responses, tokens


def numbers(text):
    return set(re.findall(r"(?<!\d)\d{2}(?!\d)", text))


def test_every_page_shows_the_same_whole_number_for_a_half_way_score(world, half_way):
    assignment, responses, tokens = half_way
    counselor = client_for(world.owner)
    pages = {
        "results": partner_client(tokens["A"]).get(reverse("assessments:results", args=[responses["A"].pk])),
        "summary": partner_client(tokens["A"]).get(reverse("assessments:shared_summary", args=[responses["A"].pk])),
        "caseload": counselor.get(reverse("assessments:caseload")),
        "couple": counselor.get(reverse("assessments:couple", args=[world.couple.pk])),
        "comparison": counselor.get(reverse("assessments:comparison", args=[world.couple.pk, assignment.pk])),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
        shown = numbers(visible_text(response))
        assert "53" in shown, f"{name} does not show Taylor's 52.5 as 53"
        assert "52" not in shown, f"{name} shows Taylor's 52.5 as 52"
        if name != "results":  # a partner's own results never show the other partner
            assert "68" in shown and "67" not in shown, f"{name} does not show Jordan's 67.5 as 68"
    assert "53 out of 100" in visible_text(pages["results"])


def test_the_charts_round_the_same_way_as_their_tables(half_way):
    svg = charts.pair_bars(
        chart_id="c", title="t", desc="d", rows=[("Index", 52.5, 67.5, False)], names={"A": "T", "B": "J"}
    )
    assert ">A 53<" in svg and ">B 68<" in svg


def test_a_band_is_read_from_the_number_shown_not_the_stored_one():
    # 69.5 shows as 70, so it is Strong; 49.5 shows as 50, so it is Mixed; 49.49 shows as 49.
    assert scoring.band(69.5) == "strong"
    assert scoring.band(69.49) == "mixed"
    assert scoring.band(49.5) == "mixed"
    assert scoring.band(49.49) == "needs_attention"
    assert scoring.domain_pair_category(69.5, 70.0) == "shared_strength"
    assert scoring.domain_pair_category(49.4, 49.49) == "shared_growth_area"
    assert scoring.domain_pair_category(49.5, 30.0) == "mixed"


@pytest.fixture
def on_the_boundary(world):
    """A finished couple whose stored scores sit half a point under a band: Taylor 69.5, Jordan 49.5."""
    assignment, responses, tokens = finished_assignment(world.couple, levels=(3, 4))
    for position, value in (("A", 69.5), ("B", 49.5)):
        score = Score.objects.get(response=responses[position])
        score.domains = dict.fromkeys(score.domains, value)
        score.connection_index = value
        score.save(update_fields=["domains", "connection_index"])
    release_summary(assignment, responses)
    return assignment, responses, tokens


def test_every_page_labels_a_boundary_score_by_the_band_of_the_number_it_shows(world, on_the_boundary):
    assignment, responses, tokens = on_the_boundary
    results = visible_text(partner_client(tokens["A"]).get(reverse("assessments:results", args=[responses["A"].pk])))
    assert "70 out of 100" in results
    assert "Strong" in results and "Mixed" not in results

    counselor = client_for(world.owner)
    comparison = counselor.get(reverse("assessments:comparison", args=[world.couple.pk, assignment.pk]))
    html = comparison.content.decode()
    # Taylor's rows show 70 and Strong, Jordan's 50 and Mixed; nobody needs attention.
    assert re.search(r'class="num">70</td><td><span class="band band-strong">Strong', html)
    assert re.search(r'class="num">50</td><td><span class="band band-mixed">Mixed', html)
    assert "band-needs_attention" not in html

    caseload = counselor.get(reverse("assessments:caseload"), {"status": "attention"})
    assert world.couple.label not in visible_text(caseload), "a couple shown at 50 is not below 50"
    caseload = visible_text(counselor.get(reverse("assessments:caseload")))
    assert world.couple.label in caseload
