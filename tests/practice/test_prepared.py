"""The worker's per-message statements: compiled once, planned once per connection, same results."""

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assessments import reminders
from assessments.models import Reminder
from practice import outbox, prepared
from practice.models import Job
from tests.conftest import make_assignment

postgresql = pytest.mark.skipif("connection.vendor != 'postgresql'")


def invitations(world):
    assignment, _ = make_assignment(world.couple)
    return list(Reminder.objects.filter(response__assignment=assignment, kind=Reminder.Kind.INVITATION).order_by("pk"))


def send(reminder):
    reminder.refresh_from_db()
    Job.objects.filter(pk=reminder.job_id).update(status=Job.Status.QUEUED)
    return outbox.run([reminder.job_id])[reminder.job_id]


def test_a_compiled_query_gives_what_the_queryset_gives_without_a_query_more(world):
    first, second = invitations(world)
    for reminder in (first, second):
        expected = reminders._deliverable(reminder.pk).get()
        with CaptureQueriesContext(connection) as queries:
            found = reminders._DELIVERABLE.first(reminder=reminder.pk)
            # Everything the e-mail reads came with the one query (select_related and the annotation).
            names = (found.response.partner.first_name, found.response.assignment.couple.practice.name)
            counselor = found.response.assignment.couple.counselor.email
        assert len(queries.captured_queries) == 1
        assert (found.pk, found.status, found.due_at, found.live_nonce) == (
            expected.pk,
            expected.status,
            expected.due_at,
            expected.live_nonce,
        )
        assert names == (expected.response.partner.first_name, world.practice.name)
        assert counselor == expected.response.assignment.couple.counselor.email
    assert reminders._DELIVERABLE.first(reminder=10**12) is None


def test_a_value_that_is_not_a_parameter_is_refused(db):
    query = prepared.Query(lambda reminder: Reminder.objects.filter(pk=1), "reminder")
    with pytest.raises(ValueError, match="not a parameter"):
        query.first(reminder=5)


def prepared_statements():
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@postgresql
def test_the_reminder_world_is_planned_once_per_connection(world):
    first, second = invitations(world)
    connection.connection.prepare_threshold = None  # as Django opens it
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    assert send(first) == "done" and send(second) == "done"
    assert len(mail.outbox) == 2
    statements = prepared_statements()
    world_reads = [s for s in statements if '"assessments_reminder"."response_id"' in s and s.startswith("SELECT")]
    assert len(world_reads) == 1, statements  # the second message reused the first one's plan
    assert any(s.startswith("UPDATE") and "practice_job" in s for s in statements)  # the take


@postgresql
def test_prepared_statements_can_be_turned_off_for_a_pooler(world, settings):
    settings.DATABASE_PREPARED_STATEMENTS = False
    first, _ = invitations(world)
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    assert send(first) == "done"
    assert prepared_statements() == []
    first.refresh_from_db()
    assert first.status == Reminder.Status.SENT


def test_a_list_of_ids_is_a_parameter_compiled_once_per_length(world):
    first, second = invitations(world)
    query = prepared.Query(
        lambda reminders: Reminder.objects.filter(pk__in=reminders).order_by("pk").values_list("pk", "kind", "due_at"),
        "reminders",
    )
    expected = list(
        Reminder.objects.filter(pk__in=[first.pk, second.pk]).order_by("pk").values_list("pk", "kind", "due_at")
    )
    assert query.rows(reminders=[first.pk, second.pk]) == expected
    assert query.rows(reminders=[second.pk, first.pk]) == expected  # the values change, not the SQL
    assert query.rows(reminders=[second.pk]) == expected[1:]  # another length: compiled once more
    assert len(query._compiled) == 2
    with CaptureQueriesContext(connection) as queries:
        assert query.rows(reminders=[]) == []
        assert query.all(reminders=[]) == []
    assert queries.captured_queries == []  # an empty list matches nothing: no query at all


def test_values_come_in_the_order_asked_for_even_with_annotations(world):
    from django.db.models import F

    first, _ = invitations(world)
    query = prepared.Query(
        lambda reminder: (
            Reminder.objects.filter(pk=reminder)
            .annotate(couple=F("response__assignment__couple_id"))
            .values_list("couple", "pk", "kind")
        ),
        "reminder",
    )
    assert query.rows(reminder=first.pk) == [(world.couple.pk, first.pk, first.kind)]
