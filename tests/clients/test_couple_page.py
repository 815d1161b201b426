import re

import pytest
from django.urls import reverse
from django.utils import timezone

from assessments import plans
from clients.models import Couple
from practice.models import AuditEvent
from tests.clients.factories import bulk_caseload, finished_assignment, visible_text
from tests.conftest import client_for, flip_first_item_keying, make_assignment, publish_version

OTHERS = ["colleague", "admin", "outsider", "outsider_admin"]


def detail(couple):
    return reverse("assessments:couple", args=[couple.pk])


@pytest.mark.smoke
def test_couple_page_lists_every_administration_with_status_and_scores(world):
    finished_assignment(world.couple, levels=(3, 2), days_ago=60)
    make_assignment(world.couple)
    page = visible_text(client_for(world.owner).get(detail(world.couple)))
    assert page.count("Connection Assessment v2 · assigned") == 2
    assert "Both finished" in page and "Open" in page
    assert "Compare both partners" in page and "Download PDF" in page
    assert "taylor@example.com" in page and "jordan@example.com" in page


@pytest.mark.smoke
def test_trend_chart_shows_both_partners_with_a_table_and_the_reliable_change(world):
    finished_assignment(world.couple, levels=(3, 2), days_ago=60)
    finished_assignment(world.couple, levels=(5, 3))
    response = client_for(world.owner).get(detail(world.couple))
    html = response.content.decode()
    assert html.count("<svg") == 9  # the index and eight domains, personal skills included
    assert 'role="img"' in html and '<title id="trend-connection_index-title">' in html
    assert "<polyline" in html
    assert re.search(r"<title>Taylor, [^<]*: 100 \(Reliable improvement\)</title>", html)  # the latest point
    page = visible_text(response)
    # Taylor 50 -> 100 (+50), Jordan 25 -> 50 (+25): both beyond the 13-point index threshold.
    assert "Taylor: latest against previous Connection Index 50 → 100 (+50): Reliable improvement" in page
    assert "Jordan: latest against previous Connection Index 25 → 50 (+25): Reliable improvement" in page
    # The same numbers in the table beside the chart, oldest administration first.
    assert '<td class="num">50</td><td class="num">25</td></tr><tr>' in html
    assert '<td class="num">100</td><td class="num">50</td></tr></tbody>' in html


def test_change_over_time_is_drawn_once_and_anew_when_another_administration_or_a_name_changes(world):
    from assessments import charts

    charts._change_over_time.cache_clear()
    finished_assignment(world.couple, levels=(3, 2), days_ago=60)
    finished_assignment(world.couple, levels=(5, 3), days_ago=30)
    client = client_for(world.owner)

    def section():
        html = client.get(detail(world.couple)).content.decode()
        return re.search(r'<section class="card" aria-labelledby="trend-title">.*?</section>', html, re.S).group(0)

    first = section()
    assert "<svg" in first
    assert section() == first  # the same section ...
    assert charts._change_over_time.cache_info().hits == 1  # ... without drawing it again

    finished_assignment(world.couple, levels=(2, 2))
    page = visible_text(client.get(detail(world.couple)))
    assert "Taylor: latest against previous Connection Index 100 → 25 (-75): Reliable decline" in page
    world.couple.partners.filter(position="A").update(first_name="Robin")
    page = visible_text(client.get(detail(world.couple)))
    assert "Robin: latest against previous" in page and "Taylor: latest" not in page
    assert charts._change_over_time.cache_info().misses == 3


def test_a_change_within_measurement_error_is_called_ups_and_downs(world):
    finished_assignment(world.couple, levels=(4, 4), days_ago=60)
    finished_assignment(world.couple, levels=(4, 4), overrides=({"COM1": 5}, None))
    page = visible_text(client_for(world.owner).get(detail(world.couple)))
    assert "Within the normal ups and downs" in page
    assert "Reliable improvement" not in page


def test_one_administration_shows_no_single_dot_charts_but_says_when_trends_appear(world):
    finished_assignment(world.couple, levels=(3, 2))
    response = client_for(world.owner).get(detail(world.couple))
    html = response.content.decode()
    assert "trend-connection_index" not in html and "<polyline" not in html
    assert "Trends appear after the second assessment." in visible_text(response)


def test_no_trend_before_anyone_finished(world):
    make_assignment(world.couple)
    page = visible_text(client_for(world.owner).get(detail(world.couple)))
    assert "Change over time" not in page
    assert "Who is still answering?" in page


@pytest.mark.parametrize("who", OTHERS)
def test_couple_page_is_a_404_for_everyone_but_its_counselor(world, who):
    finished_assignment(world.couple)
    assert client_for(getattr(world, who)).get(detail(world.couple)).status_code == 404


@pytest.mark.parametrize("size", [1, 50, 500])
def test_couple_page_query_count_does_not_grow_with_the_caseload(world, django_assert_num_queries, size):
    finished_assignment(world.couple, days_ago=30)
    finished_assignment(world.couple)
    make_assignment(world.couple)
    plans.create(
        couple=world.couple,
        every_weeks=4,
        administrations=None,
        start_on=timezone.localdate(),
        due_days=7,
        by=world.owner,
    )
    if size > 1:
        bulk_caseload(world.owner, size - 1)
    client = client_for(world.owner)
    client.get(detail(world.couple))
    # session, user + membership, couple, its partners, administrations (with instrument and
    # item count), responses (with partner, score and answer count), every reminder of them, the
    # couple's undelivered messages, its latest measurement plan and that plan's calendar, the
    # audit event. (The session is written at most once a minute: not on this request.)
    with django_assert_num_queries(11):
        client.get(detail(world.couple))


def test_counselor_saves_notes_and_the_edit_is_audited_without_the_text(world):
    url = reverse("clients:couple_notes", args=[world.couple.pk])
    response = client_for(world.owner).post(url, {"notes": "Talk about the move in session 3."})
    assert response.status_code == 302
    world.couple.refresh_from_db()
    assert world.couple.notes == "Talk about the move in session 3."
    event = AuditEvent.objects.get(action="couple.notes_edit")
    assert event.actor == world.owner and "move" not in str(event.detail)
    assert "Talk about the move in session 3." in visible_text(client_for(world.owner).get(detail(world.couple)))


@pytest.mark.parametrize("who", OTHERS)
def test_nobody_else_can_edit_notes(world, who):
    url = reverse("clients:couple_notes", args=[world.couple.pk])
    assert client_for(getattr(world, who)).post(url, {"notes": "hijacked"}).status_code == 404
    world.couple.refresh_from_db()
    assert world.couple.notes == ""


def test_notes_cannot_be_changed_with_a_get(world):
    url = reverse("clients:couple_notes", args=[world.couple.pk])
    assert client_for(world.owner).get(url, {"notes": "x"}).status_code == 405


@pytest.mark.smoke
def test_archiving_takes_a_couple_off_the_caseload_and_back_again(world):
    client = client_for(world.owner)
    url = reverse("clients:couple_archive", args=[world.couple.pk])
    client.post(url, {"action": "archive"})
    world.couple.refresh_from_db()
    assert world.couple.status == Couple.Status.ARCHIVED
    caseload = reverse("assessments:caseload")
    assert [c.label for c in client.get(caseload).context["couples"]] == []
    assert [c.label for c in client.get(caseload, {"status": "archived"}).context["couples"]] == ["Taylor & Jordan"]
    client.post(url, {"action": "archive"})  # a double click changes nothing
    client.post(url, {"action": "unarchive"})
    world.couple.refresh_from_db()
    assert world.couple.status == Couple.Status.ACTIVE
    actions = list(AuditEvent.objects.filter(action__startswith="couple.").values_list("action", flat=True))
    assert actions.count("couple.archive") == 1 and actions.count("couple.unarchive") == 1


def test_archive_with_a_tampered_action_changes_nothing(world):
    url = reverse("clients:couple_archive", args=[world.couple.pk])
    response = client_for(world.owner).post(url, {"action": "delete"}, follow=True)
    assert "Choose whether to archive the couple or bring it back." in visible_text(response)
    world.couple.refresh_from_db()
    assert world.couple.status == Couple.Status.ACTIVE


@pytest.mark.parametrize("who", OTHERS)
def test_nobody_else_can_archive_a_couple(world, who):
    url = reverse("clients:couple_archive", args=[world.couple.pk])
    assert client_for(getattr(world, who)).post(url, {"action": "archive"}).status_code == 404
    world.couple.refresh_from_db()
    assert world.couple.status == Couple.Status.ACTIVE


def test_reliable_change_is_computed_from_version_one_to_the_reworded_version_two(world):
    from assessments.models import Instrument

    finished_assignment(world.couple, levels=(2, 2), days_ago=60, instrument=Instrument.objects.get(version=1))
    finished_assignment(world.couple, levels=(5, 5))
    page = visible_text(client_for(world.owner).get(detail(world.couple)))
    assert "Connection Assessment v1" in page and "Connection Assessment v2" in page
    assert "Taylor: latest against previous Connection Index 25 → 100 (+75): Reliable improvement" in page
    assert "Jordan: latest against previous Connection Index 25 → 100 (+75): Reliable improvement" in page


def test_reliable_change_is_not_computed_against_a_version_that_scores_differently(world):
    finished_assignment(world.couple, levels=(2, 2), days_ago=60)
    publish_version(3, flip_first_item_keying)
    finished_assignment(world.couple, levels=(5, 5))
    page = visible_text(client_for(world.owner).get(detail(world.couple)))
    assert "Connection Assessment v2" in page and "Connection Assessment v3" in page
    assert "latest against previous" not in page
    assert "Reliable improvement" not in page


def test_once_both_have_finished_the_results_come_before_assigning_the_next_one(world):
    finished_assignment(world.couple)
    text = visible_text(client_for(world.owner).get(detail(world.couple)))
    assert text.index("Administrations") < text.index("Assign and send invitations")


def test_while_an_assessment_is_open_its_actions_come_first_in_the_words_the_table_uses(world):
    make_assignment(world.couple)
    text = visible_text(client_for(world.owner).get(detail(world.couple)))
    assert text.index("Resend invitation") < text.index("Administrations")
    assert "Not started" not in text and "Submitted" not in text
    assert text.count("Invited") == 4  # each partner, in the actions and in the administration's table
