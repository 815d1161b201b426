from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from assessments import stats
from tests.conftest import client_for, flip_first_item_keying, make_assignment, make_couple, page_text, publish_version
from tests.practice.export_helpers import answer_and_submit

pytestmark = pytest.mark.smoke


def administer(couple, *, days_ago, level, finish_after_days=None, due_days=7, instrument=None):
    now = timezone.now()
    assignment, _ = make_assignment(couple, now=now - timedelta(days=days_ago), days=due_days, instrument=instrument)
    if finish_after_days is not None:
        when = now - timedelta(days=days_ago) + timedelta(days=finish_after_days)
        for response in assignment.responses.all():
            answer_and_submit(response, level=level, when=when - timedelta(minutes=5))
    return assignment


@pytest.fixture
def scenario(world):
    administer(world.couple, days_ago=60, level=2, finish_after_days=1)  # Connection Index 25
    administer(world.couple, days_ago=10, level=4, finish_after_days=3)  # Connection Index 75
    other = make_couple(world.colleague, label="Lee & Kim")
    administer(other, days_ago=20, level=3)  # open, overdue since day 13
    administer(other, days_ago=5, level=3)  # open, not yet due
    return world


def period():
    today = timezone.localdate()
    return today - timedelta(days=30), today


def test_statistics_per_counselor_and_for_the_practice(scenario):
    rows, total = stats.practice_statistics(scenario.practice, *period())
    by_name = {row.label: row for row in rows}
    owner, colleague = by_name["Owner"], by_name["Colleague"]
    assert (owner.sent, owner.completion_rate, owner.overdue_now) == (1, 100.0, 0)
    assert owner.median_days == pytest.approx(3.0, abs=0.01)
    assert (owner.partners_compared, owner.ci_first_mean, owner.ci_latest_mean) == (2, 25.0, 75.0)
    assert owner.improved_share == 100.0
    assert (colleague.sent, colleague.completion_rate, colleague.overdue_now) == (2, 0.0, 1)
    assert colleague.median_days is None and colleague.partners_compared == 0
    assert (total.sent, total.completed, total.overdue_now, total.partners_compared) == (3, 1, 1, 2)
    assert total.completion_rate == pytest.approx(100 / 3)


def test_a_period_before_the_second_administration_shows_no_change(scenario):
    today = timezone.localdate()
    rows, total = stats.practice_statistics(scenario.practice, today - timedelta(days=70), today - timedelta(days=30))
    assert total.sent == 1 and total.partners_compared == 0 and total.median_days == pytest.approx(1.0, abs=0.01)


def test_change_is_counted_from_version_one_to_the_reworded_version_two(world):
    from assessments.models import Instrument

    administer(world.couple, days_ago=60, level=2, finish_after_days=1, instrument=Instrument.objects.get(version=1))
    administer(world.couple, days_ago=10, level=4, finish_after_days=3)
    rows, total = stats.practice_statistics(world.practice, *period())
    assert (total.partners_compared, total.ci_first_mean, total.ci_latest_mean) == (2, 25.0, 75.0)
    assert total.improved_share == 100.0


def test_change_is_not_counted_against_a_version_that_scores_differently(world):
    administer(world.couple, days_ago=60, level=2, finish_after_days=1)
    publish_version(3, flip_first_item_keying)
    administer(world.couple, days_ago=10, level=4, finish_after_days=3)
    rows, total = stats.practice_statistics(world.practice, *period())
    assert total.completed == 1 and total.partners_compared == 0


def test_statistics_page_draws_charts_and_shows_the_same_numbers_in_a_table(scenario, django_assert_num_queries):
    client = client_for(scenario.admin)
    start, end = period()
    # session, user + membership + practice, members, counts by counselor, completion times, overdue,
    # current instrument, scores history, the audit row of this view, then the session save
    # (savepoint, update, release)
    with django_assert_num_queries(12):
        response = client.get(reverse("assessments:statistics"), {"start": start.isoformat(), "end": end.isoformat()})
    page = page_text(response)
    assert response.status_code == 200
    main = page[page.index("<main") :]
    assert main.count("<svg") == 2 and "<script" not in main
    table = page[page.index('id="statistics-table"') :]
    for number in ("100%", "3.0", "25.0", "75.0", "33%"):
        assert number in table


def test_statistics_period_with_end_before_start_is_a_clear_error(scenario):
    response = client_for(scenario.admin).get(
        reverse("assessments:statistics"), {"start": "2026-03-01", "end": "2026-02-01"}
    )
    assert response.status_code == 200
    assert "The end date is before the start date" in page_text(response)


def test_statistics_show_no_answers_and_no_other_practice(scenario):
    page = page_text(client_for(scenario.outsider_admin).get(reverse("assessments:statistics")))
    assert "Owner" not in page and "Colleague" not in page


@pytest.mark.parametrize("who", ["owner", "colleague"])
def test_counselors_cannot_open_practice_statistics(scenario, who):
    assert client_for(getattr(scenario, who)).get(reverse("assessments:statistics")).status_code == 403
