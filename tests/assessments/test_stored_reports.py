"""A completed administration's comparison is computed once and stored; the page reads it."""

import re
from datetime import timedelta

from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from assessments import comparison
from assessments.models import Assignment, ComparisonReport
from practice.models import Job
from tests.clients.factories import finished_assignment
from tests.conftest import client_for, deliver


def later():
    """After the factories' submits (an hour ahead of now): the report's job is due."""
    return timezone.now() + timedelta(hours=2)


def fresh(assignment):
    assignment = Assignment.objects.select_related("instrument", "couple").get(pk=assignment.pk)
    return comparison.report_data(comparison.build_report(assignment, comparison.responses_by_position(assignment)))


def page(client, assignment):
    html = client.get(reverse("assessments:comparison", args=[assignment.couple_id, assignment.pk])).content.decode()
    html = re.sub(r'(nonce|value)="[^"]*"', "", html)  # per request: the CSP nonce, the CSRF token
    return re.sub(r'"X-CSRFToken": "[^"]*"', "", html)


def test_the_completing_submit_queues_the_report_and_the_stored_one_equals_a_fresh_one(world):
    assignment, _, _ = finished_assignment(world.couple, levels=(4, 2), overrides=(None, {"S1": 2}))
    assert Job.objects.filter(kind="comparison_report", key=f"report:{assignment.pk}").count() == 1
    assert not ComparisonReport.objects.exists()
    deliver(now=later())
    stored = ComparisonReport.objects.get(assignment=assignment)
    assert stored.version == comparison.REPORT_VERSION
    assert stored.data == fresh(assignment)


def test_the_page_from_the_stored_report_is_the_page_computed_from_the_answers(world):
    assignment, _, _ = finished_assignment(world.couple, levels=(5, 2), overrides=({"S1": 3}, None))
    client = client_for(world.owner)
    page(client, assignment)  # the first view marks the alert seen and the comparison reviewed
    computed = page(client, assignment)
    deliver(now=later())
    assert ComparisonReport.objects.filter(assignment=assignment).exists()
    assert page(client, assignment) == computed
    assert "Safety" in computed and "Different views" in computed


def test_an_outdated_report_is_not_read_and_the_command_stores_it_again(world):
    assignment, _, _ = finished_assignment(world.couple)
    deliver(now=later())
    ComparisonReport.objects.update(version=0, data={"domains": "not a report"})
    client = client_for(world.owner)
    assert "Scores side by side" in page(client, assignment)  # computed, not the stale row
    call_command("compute_reports", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert ComparisonReport.objects.get().data == fresh(assignment)


def test_the_stored_comparison_page_costs_a_fixed_number_of_queries(world, django_assert_num_queries):
    assignment, _, _ = finished_assignment(world.couple)
    deliver(now=later())
    client = client_for(world.owner)
    url = reverse("assessments:comparison", args=[world.couple.pk, assignment.pk])
    client.get(url)
    # session, user + membership, the administration with couple and instrument, both responses
    # (partner, score, alert), the stored report (instead of both partners' answers), the audit
    # row, the talk-about-this flags, the inbox mark: what tests/clients/test_comparison.py pins.
    with django_assert_num_queries(8):
        assert client.get(url).status_code == 200
