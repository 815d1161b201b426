"""The caseload's stored rows: every workflow leaves them as a fresh rebuild would compute them,
and the page reads them with a fixed number of queries however large the caseload."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.forms.models import model_to_dict
from django.urls import reverse
from django.utils import timezone

from assessments import workflows
from assessments.models import CaseloadRow, SafetyAlert
from clients.models import Couple
from practice.models import Membership
from tests.assessments.answering_helpers import answer_everything, save, section_codes, start
from tests.clients.factories import answer, bulk_caseload, finished_assignment
from tests.conftest import client_for, make_assignment, make_couple

CASELOAD = reverse("assessments:caseload")


def rows():
    """Every stored row, as plain values (the refresh time aside: it says when, not what)."""
    return {r.pk: model_to_dict(r, exclude=["refreshed_at"]) for r in CaseloadRow.objects.order_by("pk")}


def assert_current():
    """The stored rows equal what a rebuild computes now."""
    stored = rows()
    call_command("rebuild_caseload", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert stored == rows()


def row(couple):
    return CaseloadRow.objects.get(pk=couple.pk)


def labels(response):
    return [c.label for c in response.context["couples"]]


def test_a_new_couple_has_its_row_at_once(world):
    couple = make_couple(world.owner, "Fresh & New")
    assert row(couple).current_id is None and row(couple).couple_status == "active"
    assert_current()


def test_assigning_cancelling_and_reassigning_keep_the_row_current(world):
    assignment, _ = make_assignment(world.couple, days=3)
    assert row(world.couple).current_id == assignment.pk and row(world.couple).current_status == "open"
    assert_current()
    workflows.cancel(assignment)
    assert row(world.couple).current_id is None
    assert_current()
    again, _ = make_assignment(world.couple, days=9)
    assert row(world.couple).current_id == again.pk
    assert_current()


def test_a_saved_page_an_autosave_and_a_submit_keep_the_row_current(world):
    assignment, tokens = make_assignment(world.couple)
    browser = start(tokens["A"])
    before = row(world.couple).last_activity
    codes = section_codes()[0]
    page = {f"item-{code}": "3" for code in codes} | {f"seq-{code}": "1" for code in codes}
    assert browser.post(reverse("assessments:section", args=[browser.response_id, 1]), page).status_code == 302
    assert row(world.couple).last_activity > before  # the saved page is the couple's latest activity
    assert_current()
    assert save(browser, codes[0], 4, 2).status_code == 204  # an autosave changes nothing the row holds
    assert_current()
    other = start(tokens["B"])
    answer_everything(other, value=2, safety=3)  # the safety answers raise an alert as they are saved
    assert row(world.couple).open_alert and row(world.couple).safety_raised
    assert_current()
    assert other.post(reverse("assessments:submit", args=[other.response_id])).status_code == 302
    assert row(world.couple).index_b is not None
    assert_current()


def test_both_finishing_twice_gives_the_change_and_the_row_stays_current(world):
    finished_assignment(world.couple, levels=(2, 2), days_ago=60)
    finished_assignment(world.couple, levels=(5, 4))
    current = row(world.couple)
    assert current.current_status == "completed"
    assert (current.previous_a, current.index_a) == (25.0, 100.0)
    assert_current()


def test_raising_and_acknowledging_an_alert_keep_the_row_current(world):
    assignment, _ = make_assignment(world.couple)
    answer(assignment.responses.get(partner__position="A"), overrides={"S1": 2})
    assert row(world.couple).open_alert
    assert_current()
    alert = SafetyAlert.objects.get(response__assignment=assignment)
    assert client_for(world.owner).post(reverse("assessments:acknowledge_alert", args=[alert.pk])).status_code == 302
    assert not row(world.couple).open_alert and row(world.couple).safety_raised
    assert_current()


def test_archiving_and_transferring_move_the_row_along(world):
    archive = reverse("clients:couple_archive", args=[world.couple.pk])
    assert client_for(world.owner).post(archive, {"action": "archive"}).status_code == 302
    assert row(world.couple).couple_status == Couple.Status.ARCHIVED
    assert_current()
    client_for(world.owner).post(archive, {"action": "restore"})
    assert_current()
    membership = Membership.objects.get(user=world.owner)
    moved = client_for(world.admin).post(
        reverse("clients:transfer", args=[membership.pk]), {"to": world.colleague.pk, "couples": [world.couple.pk]}
    )
    assert moved.status_code == 302
    assert row(world.couple).counselor_id == world.colleague.pk
    assert_current()


def test_rebuild_recomputes_a_row_that_was_lost(world):
    finished_assignment(world.couple)
    CaseloadRow.objects.all().delete()
    assert labels(client_for(world.owner).get(CASELOAD)) == []
    call_command("rebuild_caseload", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert labels(client_for(world.owner).get(CASELOAD)) == ["Taylor & Jordan"]


@pytest.mark.parametrize("size", [5, 60])
def test_the_caseload_costs_the_same_queries_at_5_and_60_couples(world, django_assert_num_queries, size):
    finished_assignment(world.couple, days_ago=20)
    make_assignment(world.couple, days=-1, now=timezone.now() - timedelta(days=8))
    bulk_caseload(world.owner, size - 1)
    client = client_for(world.owner)
    client.get(CASELOAD)
    # session, user + membership, the page of rows with its total, partners, current responses
    # with answer counts, undelivered messages, the audit row.
    with django_assert_num_queries(7):
        first = client.get(CASELOAD, {"sort": "activity"})
    assert len(labels(first)) == min(size, 25)
    if size > 25:
        # The Next link continues from the page's last couple (a keyset), at the same cost.
        after = first.context["page"].last_couple
        assert f"after={after}" in first.content.decode()
        with django_assert_num_queries(7):
            second = client.get(CASELOAD, {"sort": "activity", "page": 2, "after": after})
        assert second.context["page"].number == 2 and second.context["page"].count == size


@pytest.mark.parametrize("sort", ["due", "index", "activity"])
def test_keyset_pages_list_the_same_couples_as_numbered_pages(world, sort):
    finished_assignment(world.couple, levels=(2, 3))
    bulk_caseload(world.owner, 60)
    client = client_for(world.owner)
    numbered = [labels(client.get(CASELOAD, {"sort": sort, "page": n})) for n in (1, 2, 3)]
    keyset, after = [labels(client.get(CASELOAD, {"sort": sort}))], None
    for n in (2, 3):
        page = client.get(CASELOAD, {"sort": sort, "page": n - 1, **({"after": after} if after else {})})
        after = page.context["page"].last_couple
        keyset.append(labels(client.get(CASELOAD, {"sort": sort, "page": n, "after": after})))
    assert keyset == numbered
    assert sum(len(p) for p in keyset) == 61


@pytest.mark.parametrize("after", ["abc", "-1", "99999999999999999999", "0"])
def test_a_tampered_or_stale_keyset_falls_back_to_the_numbered_page(world, after):
    bulk_caseload(world.owner, 30)
    client = client_for(world.owner)
    expected = labels(client.get(CASELOAD, {"page": 2}))
    response = client.get(CASELOAD, {"page": 2, "after": after})
    assert response.status_code == 200 and labels(response) == expected


def test_another_counselors_couple_as_keyset_shows_nothing_of_theirs(world):
    theirs = make_couple(world.colleague, "Not Yours")
    bulk_caseload(world.owner, 30)
    response = client_for(world.owner).get(CASELOAD, {"page": 2, "after": theirs.pk})
    assert response.status_code == 200 and "Not Yours" not in labels(response)
    assert len(labels(response)) == 6
