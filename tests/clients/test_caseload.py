from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from assessments import caseload
from assessments.models import SafetyAlert
from clients.models import Couple
from tests.clients.factories import answer, bulk_caseload, finished_assignment, visible_text
from tests.conftest import client_for, flip_first_item_keying, make_assignment, make_couple, page_text, publish_version

CASELOAD = reverse("assessments:caseload")


def htmx_get(client, url, **params):
    return client.get(url, params, HTTP_HX_REQUEST="true")


@pytest.fixture
def busy(world):
    """The owner's caseload with a couple in every state."""
    owner = world.owner
    couples = {}
    couples["new"] = make_couple(owner, "New & Unassigned", a=("Nia", "nia@x.example"), b=("Ned", "ned@x.example"))
    couples["invited"] = make_couple(owner, "Invited & Waiting", a=("Ivy", "ivy@x.example"), b=("Ian", "ian@x.example"))
    make_assignment(couples["invited"], days=10)
    couples["overdue"] = make_couple(owner, "Late & Later", a=("Lou", "lou@x.example"), b=("Lee", "lee@x.example"))
    overdue, _ = make_assignment(couples["overdue"], days=-3, now=timezone.now() - timedelta(days=10))
    answer(overdue.responses.get(partner__position="A"), upto=11, finish=False)
    couples["finished"] = world.couple
    finished_assignment(world.couple, levels=(3, 2), days_ago=60)
    finished_assignment(world.couple, levels=(5, 4))
    couples["struggling"] = make_couple(owner, "Low & Lower", a=("Max", "max@x.example"), b=("Mia", "mia@x.example"))
    finished_assignment(couples["struggling"], levels=(2, 2))
    couples["safety"] = make_couple(owner, "Quiet & Alarm", a=("Sal", "sal@x.example"), b=("Sue", "sue@x.example"))
    safety, _ = make_assignment(couples["safety"], days=5)
    answer(safety.responses.get(partner__position="A"), overrides={"S1": 2})
    # Seen and acknowledged: an open alert would put the couple first in every list
    # (tests/assessments/test_hostile_partner.py), and these tests are about the ordinary order.
    SafetyAlert.objects.filter(response__assignment=safety).update(
        first_viewed_at=timezone.now(), acknowledged_at=timezone.now()
    )
    caseload.refresh(couples["safety"].pk)
    couples["archived"] = make_couple(owner, "Gone & Archived", a=("Gil", "gil@x.example"), b=("Gus", "gus@x.example"))
    Couple.objects.filter(pk=couples["archived"].pk).update(status=Couple.Status.ARCHIVED)
    caseload.refresh(couples["archived"].pk)
    return couples


def labels(response):
    return [c.label for c in response.context["couples"]]


@pytest.mark.smoke
def test_caseload_shows_each_partners_status_due_date_index_and_change(busy, world):
    page = visible_text(client_for(world.owner).get(CASELOAD))
    assert "Not invited" in page
    assert "Invited" in page
    assert "In progress · 20%" in page  # 11 of 55 statements answered
    assert "Overdue since" in page
    assert "Finished" in page
    # Taylor went from 50 to 100, Jordan from 25 to 75: both reliable improvements.
    assert "Index 100" in page and "+50 · reliable improvement" in page
    assert "Safety alert" in page
    assert "Gone & Archived" not in page


def test_caseload_shows_change_from_version_one_to_the_reworded_version_two(world):
    from assessments.models import Instrument

    finished_assignment(world.couple, levels=(2, 2), days_ago=60, instrument=Instrument.objects.get(version=1))
    finished_assignment(world.couple, levels=(5, 4))
    page = visible_text(client_for(world.owner).get(CASELOAD))
    # Taylor 25 -> 100, Jordan 25 -> 75: both reliable improvements, though the versions differ.
    assert "+75 · reliable improvement" in page and "+50 · reliable improvement" in page


def test_caseload_shows_no_change_against_a_version_that_scores_differently(world):
    finished_assignment(world.couple, levels=(2, 2), days_ago=60)
    publish_version(3, flip_first_item_keying)
    finished_assignment(world.couple, levels=(5, 4))
    page = visible_text(client_for(world.owner).get(CASELOAD))
    assert "Index 100" in page
    assert "reliable improvement" not in page and "+75" not in page


@pytest.mark.parametrize("who", ["colleague", "admin", "outsider", "outsider_admin"])
def test_nobody_else_sees_the_owners_couples(busy, world, who):
    page = page_text(client_for(getattr(world, who)).get(CASELOAD))
    for couple in busy.values():
        assert couple.label not in page


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("overdue", ["Late & Later"]),
        ("waiting", ["Late & Later", "Quiet & Alarm", "Invited & Waiting"]),
        ("finished", ["Low & Lower", "Taylor & Jordan"]),
        ("attention", ["Late & Later", "Low & Lower", "Quiet & Alarm"]),
        ("archived", ["Gone & Archived"]),
    ],
)
def test_counselor_filters_the_caseload_by_status(busy, world, status, expected):
    response = client_for(world.owner).get(CASELOAD, {"status": status})
    assert sorted(labels(response)) == sorted(expected)


def test_needs_attention_includes_a_raised_safety_check_a_low_index_and_overdue(busy, world):
    got = set(labels(client_for(world.owner).get(CASELOAD, {"status": "attention"})))
    assert {"Quiet & Alarm", "Low & Lower", "Late & Later"} <= got
    assert "Taylor & Jordan" not in got


def test_search_finds_a_couple_by_label_or_partner_name(busy, world):
    client = client_for(world.owner)
    assert labels(client.get(CASELOAD, {"q": "lower"})) == ["Low & Lower"]
    assert labels(client.get(CASELOAD, {"q": "JORDAN"})) == ["Taylor & Jordan"]
    assert labels(client.get(CASELOAD, {"q": "nobody-called-this"})) == []
    assert "No couple matches these filters" in page_text(client.get(CASELOAD, {"q": "nobody-called-this"}))


def test_default_order_is_the_soonest_due_date_first(busy, world):
    got = labels(client_for(world.owner).get(CASELOAD))
    assert got[:3] == ["Late & Later", "Quiet & Alarm", "Invited & Waiting"]
    assert set(got[3:]) == {"Low & Lower", "New & Unassigned", "Taylor & Jordan"}


def test_sort_by_index_puts_the_lowest_index_first_and_couples_without_one_last(busy, world):
    got = labels(client_for(world.owner).get(CASELOAD, {"sort": "index"}))
    # Low & Lower 25; Quiet & Alarm 75 (one partner); Taylor & Jordan 75 and 100.
    assert got[:3] == ["Low & Lower", "Quiet & Alarm", "Taylor & Jordan"]
    assert set(got[3:]) == {"Late & Later", "Invited & Waiting", "New & Unassigned"}


def test_sort_by_last_activity_puts_the_latest_answers_first(busy, world):
    got = labels(client_for(world.owner).get(CASELOAD, {"sort": "activity"}))
    assert got[0] in {"Quiet & Alarm", "Low & Lower", "Taylor & Jordan"}
    assert got[-1] == "New & Unassigned"


@pytest.mark.smoke
@pytest.mark.parametrize(
    "params",
    [
        {"status": "everything", "sort": "random"},
        {"sort": "label; DROP TABLE clients_couple"},
        {"page": "x"},
        {"page": "-3"},
        {"page": "99999999999999999999"},
        {"q": "x" * 500},
        {"q": "nul\x00byte"},
    ],
)
def test_unknown_filter_sort_and_page_values_fall_back_to_defaults(busy, world, params):
    response = client_for(world.owner).get(CASELOAD, params)
    assert response.status_code == 200
    if "q" not in params:
        assert len(labels(response)) == 6


def test_the_caseload_is_paginated_and_keeps_the_filters_in_the_links(world):
    bulk_caseload(world.owner, 30)
    client = client_for(world.owner)
    first = client.get(CASELOAD, {"sort": "index"})
    assert len(labels(first)) == 25
    assert "Page 1 of 2" in page_text(first)
    assert "?sort=index&amp;page=2" in first.content.decode()
    second = client.get(CASELOAD, {"sort": "index", "page": 2})
    assert len(labels(second)) == 6  # 30 + the world's couple
    assert not set(labels(first)) & set(labels(second))
    past_the_end = client.get(CASELOAD, {"page": 7})
    assert past_the_end.context["page"].number == 2


def test_htmx_gets_only_the_list_and_the_filter_form_pushes_the_url(busy, world):
    client = client_for(world.owner)
    partial = htmx_get(client, CASELOAD, status="overdue").content.decode()
    assert partial.lstrip().startswith('<section id="couple-list"')
    assert "<html" not in partial and "Late &amp; Later" in partial
    full = client.get(CASELOAD).content.decode()
    assert 'hx-push-url="true"' in full and 'hx-target="#couple-list"' in full
    assert '<form class="card caseload-filters" method="get"' in full  # works without JavaScript


def test_a_user_without_a_practice_cannot_open_a_caseload(db):
    from tests.conftest import make_user

    assert client_for(make_user(None, "loner@example.com")).get(CASELOAD).status_code == 403


@pytest.mark.parametrize("size", [1, 50, 500])
def test_caseload_query_count_does_not_grow_with_the_caseload(world, django_assert_num_queries, size):
    # The world's couple: two finished administrations and a third overdue one, so it comes
    # first on the page and every query below has rows to fetch.
    finished_assignment(world.couple, days_ago=40)
    finished_assignment(world.couple, levels=(5, 5), days_ago=20)
    make_assignment(world.couple, days=-1, now=timezone.now() - timedelta(days=8))
    if size > 1:
        bulk_caseload(world.owner, size - 1)
    client = client_for(world.owner)
    client.get(CASELOAD)  # the first request of a session stamps it
    # session, user + membership, the page of caseload rows with its total (window count),
    # partners, current responses with answer counts, the messages that could not be delivered,
    # the audit row of this view. (The session is written at most once a minute: not on this
    # request; indexes and changes are the rows', norms and item counts cached per instrument.)
    with django_assert_num_queries(7):
        response = client.get(CASELOAD)
    assert len(labels(response)) == min(size, 25)
    with django_assert_num_queries(6):
        htmx_get(client, CASELOAD, status="attention", sort="index", q="a")
