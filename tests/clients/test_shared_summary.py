"""The summary a counselor releases: what each partner sees through their own link, and what never."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from assessments.models import Instrument
from practice.models import AuditEvent
from tests.clients.factories import finished_assignment, partner_client, visible_text
from tests.conftest import client_for

ANSWER_WORDS = [
    "Strongly agree",
    "Strongly disagree",
    "Disagree",
    "Agree",
    "Unsure",
    "Prefer not to answer",
    "Never",
    "Rarely",
    "Sometimes",
    "Fairly often",
    "Frequently",
]
SAFETY_WORDS = ["Urgent", "Concern", "Safety check", "Safety alert", "alert", "past 12 months", "scared", "harm"]


@pytest.fixture
def released(world):
    # Jordan's safety check is urgent; Taylor's personal skills differ from everything else.
    assignment, responses, tokens = finished_assignment(
        world.couple,
        levels=(5, 2),
        overrides=({"PER1": 1, "PER2": 1}, {"S1": 3, "S3": 4}),
    )
    # The urgent alert is still unread: releasing needs the counselor to confirm it.
    client_for(world.owner).post(
        reverse("assessments:release", args=[world.couple.pk, assignment.pk]), {"confirm_risk": "on"}
    )
    assignment.refresh_from_db()
    assert assignment.released_at is not None
    return assignment, responses, tokens


def summary_url(response):
    return reverse("assessments:shared_summary", args=[response.pk])


@pytest.mark.smoke
@pytest.mark.parametrize("position", ["A", "B"])
def test_each_partner_sees_the_domain_scores_side_by_side(released, position):
    assignment, responses, tokens = released
    response = partner_client(tokens[position]).get(summary_url(responses[position]))
    assert response.status_code == 200
    page = visible_text(response)
    assert "Your shared summary" in page
    assert "Taylor" in page and "Jordan" in page
    assert "Communication & feeling understood" in page and "Overall connection & outlook" in page
    assert "Shared strengths" in page and "Worth talking about" in page
    assert "<svg" in response.content.decode()


@pytest.mark.smoke
@pytest.mark.parametrize("position", ["A", "B"])
def test_the_summary_holds_no_item_answer_no_personal_skills_and_nothing_about_safety(released, position):
    assignment, responses, tokens = released
    response = partner_client(tokens[position]).get(summary_url(responses[position]))
    page = visible_text(response)
    html = response.content.decode()
    for item in Instrument.current().items.all():
        assert item.text not in page, item.code
        assert item.code not in html, item.code
    for words in ANSWER_WORDS:
        assert not re.search(rf"\b{words}\b", page), words
    personal = Instrument.current().domains()["personal_skills"]
    assert personal["title"] not in page and personal["meaning"] not in page
    assert "personal" not in html.lower()
    for words in SAFETY_WORDS:
        assert words.lower() not in page.lower(), words
    assert "attunement" not in page.lower() and "predict" not in page.lower()


def test_viewing_the_summary_is_audited_for_the_practice(released, world):
    assignment, responses, tokens = released
    partner_client(tokens["A"]).get(summary_url(responses["A"]))
    event = AuditEvent.objects.get(action="summary.view")
    assert (event.practice, event.actor, event.actor_label) == (world.practice, None, "partner A")


def test_before_release_the_partner_is_told_nothing_is_shared_yet(world):
    assignment, responses, tokens = finished_assignment(world.couple)
    response = partner_client(tokens["A"]).get(summary_url(responses["A"]))
    assert response.status_code == 404
    assert "Nothing to show yet" in visible_text(response)


def test_the_summary_opens_only_from_the_partners_own_link(released):
    assignment, responses, tokens = released
    stranger = Client().get(summary_url(responses["A"]))
    assert stranger.status_code == 403
    assert "Please open your personal link" in visible_text(stranger)
    assert partner_client(tokens["A"]).get(summary_url(responses["B"])).status_code == 403


@pytest.mark.parametrize("who", ["owner", "colleague", "outsider"])
def test_staff_cannot_open_the_partner_summary_without_a_link(released, world, who):
    assignment, responses, tokens = released
    assert client_for(getattr(world, who)).get(summary_url(responses["A"])).status_code == 403


def test_the_summary_still_shows_if_a_stored_score_went_missing(released):
    from assessments.models import Score

    assignment, responses, tokens = released
    Score.objects.filter(response__assignment=assignment).delete()
    response = partner_client(tokens["B"]).get(summary_url(responses["B"]))
    assert response.status_code == 200
    assert "Communication & feeling understood" in visible_text(response)
