"""The outbox: work for later as rows, handed out once, retried as the failure deserves, never lost.

These run the dispatcher and the worker's side as plain functions on the real database (the
dispatcher publishes to this test process's own queue on the real broker, purged afterwards);
tests/assessments/test_reminders_worker.py and tests/faults/ run them in real worker processes.
"""

import errno
import smtplib
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from connection_practice.celery import app as celery_app
from practice import outbox
from practice.models import Job
from tests.conftest import QUEUE

pytestmark = pytest.mark.smoke

CALLS = []


@outbox.handler("test.record", channel="test-mail")
def record(job, now):
    CALLS.append((job.key, now))
    if job.payload.get("fail"):
        raise OSError(errno.ENOSPC, "No space left on device")
    if job.payload.get("refuse"):
        raise smtplib.SMTPRecipientsRefused({"x@example.com": (550, b"5.1.1 no such user")})
    if job.payload.get("later"):
        raise outbox.Later(now + timedelta(hours=1), "quiet hours")


FAILED = []
outbox.handler("test.fails", channel="test-mail", max_attempts=3, on_failure=lambda job, words: FAILED.append(words))(
    lambda job, now: (_ for _ in ()).throw(TimeoutError())
)


@pytest.fixture(autouse=True)
def _clean():
    CALLS.clear()
    FAILED.clear()
    yield
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge(QUEUE)


def handed_out(job):
    Job.objects.filter(pk=job.pk).update(status=Job.Status.QUEUED, claimed_at=timezone.now())


def test_a_job_is_written_once_per_key_and_only_with_its_transaction(db):
    with transaction.atomic():
        first = outbox.enqueue("test.record", "k1", payload={"n": 1})
        again = outbox.enqueue("test.record", "k1", payload={"n": 2})
    assert first.pk == again.pk and Job.objects.get(key="k1").payload == {"n": 1}
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox.enqueue("test.record", "k2")
        raise RuntimeError("the request failed half way")
    assert not Job.objects.filter(key="k2").exists()


def test_one_nudge_per_transaction_and_none_for_work_due_later(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        outbox.enqueue("test.record", "a")
        outbox.enqueue("test.record", "b")
        outbox.enqueue("test.record", "c")
    assert [c.__name__ for c in callbacks] == ["nudge"]
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        outbox.enqueue("test.record", "tomorrow", due_at=timezone.now() + timedelta(days=1))
    assert callbacks == []


def test_a_nudge_with_the_broker_unreachable_returns_quietly(db, settings):
    # Nothing listens on port 9 ("discard"): the connection is refused at once.
    app_url = celery_app.conf.broker_url
    celery_app.conf.broker_url = "redis://127.0.0.1:9/0"
    celery_app.pool.force_close_all()
    try:
        started = timezone.now()
        outbox.nudge()  # raises nothing
        assert (timezone.now() - started).total_seconds() < 2
    finally:
        celery_app.conf.broker_url = app_url
        celery_app.pool.force_close_all()


def test_dispatch_hands_each_due_job_out_once_and_leaves_future_ones_waiting(db):
    due = [outbox.enqueue("test.record", f"due-{i}") for i in range(3)]
    future = outbox.enqueue("test.record", "future", due_at=timezone.now() + timedelta(hours=1))
    first, second = outbox.dispatch(), outbox.dispatch()
    assert sorted(first.claimed) == sorted(j.pk for j in due) and second.claimed == []
    assert Job.objects.get(pk=future.pk).status == Job.Status.PENDING


def test_a_job_the_broker_lost_is_handed_out_again_after_the_queue_lease(db):
    job = outbox.enqueue("test.record", "lost")
    now = timezone.now()
    assert outbox.dispatch(now=now).claimed == [job.pk]
    assert outbox.dispatch(now=now + outbox.queue_lease() - timedelta(seconds=1)).claimed == []
    later = outbox.dispatch(now=now + outbox.queue_lease() + timedelta(seconds=1))
    assert later.taken_back == 1 and later.claimed == [job.pk]


def test_a_job_whose_worker_died_is_taken_back_after_its_lease_and_given_up_after_the_last_try(db):
    job = outbox.enqueue("test.fails", "dead")
    kind = outbox.kinds()["test.fails"]
    started = timezone.now() - kind.lease - timedelta(seconds=1)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, claimed_at=started, attempts=1)
    assert outbox.take_back(timezone.now()) == 1
    assert Job.objects.get(pk=job.pk).status == Job.Status.PENDING
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, claimed_at=started, attempts=kind.max_attempts)
    outbox.take_back(timezone.now())
    failed = Job.objects.get(pk=job.pk)
    assert failed.status == Job.Status.FAILED and failed.last_error == "the worker stopped each time"
    assert FAILED == ["the worker stopped each time"]


def test_a_job_is_done_once_however_often_its_task_arrives(db):
    job = outbox.enqueue("test.record", "once")
    handed_out(job)
    assert outbox.run_one(job.pk) == "done"
    assert outbox.run_one(job.pk) == "taken"  # the same task delivered again
    assert len(CALLS) == 1
    assert Job.objects.get(pk=job.pk).status == Job.Status.DONE


def test_waiting_for_quiet_hours_to_end_is_not_an_attempt(db):
    job = outbox.enqueue("test.record", "quiet", payload={"later": True})
    handed_out(job)
    assert outbox.run_one(job.pk) == "later"
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Job.Status.PENDING, 0) and job.due_at > timezone.now()


def test_a_full_disk_is_transient_and_retried_after_a_backoff_in_words(db):
    job = outbox.enqueue("test.record", "disk", payload={"fail": True})
    handed_out(job)
    assert outbox.run_one(job.pk) == "retry"
    job.refresh_from_db()
    assert job.last_error == "the disk the e-mail is written to is full"
    assert timezone.now() < job.due_at <= timezone.now() + timedelta(seconds=30)


def test_a_refused_recipient_fails_at_once(db):
    job = outbox.enqueue("test.record", "bounce", payload={"refuse": True})
    handed_out(job)
    assert outbox.run_one(job.pk) == "failed"
    assert Job.objects.get(pk=job.pk).last_error == "the address was rejected by the mail server"


def test_transient_failures_give_up_after_the_kinds_last_try_and_say_so(db):
    job = outbox.enqueue("test.fails", "tries")
    for outcome in ("retry", "retry", "failed"):
        handed_out(job)
        assert outbox.run_one(job.pk) == outcome
    assert FAILED == ["the mail server did not answer in time (gave up after 3 tries)"]


@pytest.mark.parametrize(
    ("exc", "permanent", "words"),
    [
        (smtplib.SMTPResponseException(451, b"try later"), False, "the mail server asked to try again later (451)"),
        (smtplib.SMTPResponseException(554, b"no"), True, "the mail server refused the message (554)"),
        (smtplib.SMTPSenderRefused(451, b"busy", "a@b"), False, "the mail server asked to try again later (451)"),
        (
            smtplib.SMTPSenderRefused(553, b"no", "a@b"),
            True,
            "the practice's sender address was refused by the mail server (553)",
        ),
        (
            smtplib.SMTPRecipientsRefused({"x@example.com": (450, b"greylisted")}),
            False,
            "the mail server asked to try the address again later (450)",
        ),
        (smtplib.SMTPServerDisconnected("gone"), False, "the mail server could not be reached"),
        (ConnectionRefusedError(111, "refused"), False, "the mail server could not be reached"),
        (OSError(errno.ENOSPC, "No space left on device"), False, "the disk the e-mail is written to is full"),
        (outbox.Permanent("the couple was deleted"), True, "the couple was deleted"),
    ],
)
def test_each_failure_is_classified_and_put_in_words(exc, permanent, words):
    assert outbox.classify(exc) == (permanent, words)


def test_backoff_grows_from_thirty_seconds_to_a_day_with_jitter():
    samples = {attempt: [outbox.backoff(attempt) for _ in range(200)] for attempt in range(1, 20)}
    assert max(samples[1]) <= 30 and min(samples[2]) >= 30 and max(samples[2]) <= 60
    assert len(set(samples[5])) > 20  # jitter: racing retries spread out
    assert max(max(s) for s in samples.values()) <= 24 * 3600 and min(samples[19]) >= 12 * 3600


def test_while_a_channel_fails_one_waiting_job_is_tried_each_minute_and_a_success_brings_all_forward(db):
    now = timezone.now()
    waiting = [outbox.enqueue("test.record", f"held-{i}") for i in range(3)]
    last_try = now - timedelta(seconds=30)
    Job.objects.filter(pk__in=[j.pk for j in waiting]).update(
        attempts=4, claimed_at=last_try, due_at=now + timedelta(minutes=10), last_error="unreachable"
    )
    assert outbox.probe(now) == 0  # tried half a minute ago: not yet
    assert outbox.probe(now + timedelta(seconds=31)) == 1
    (probe,) = Job.objects.filter(due_at__lte=now + timedelta(seconds=31))
    handed_out(probe)
    assert outbox.run([probe.pk]) == {probe.pk: "done"}
    assert Job.objects.filter(status=Job.Status.PENDING, due_at__gt=timezone.now()).count() == 0


def test_readiness_reports_the_database_the_broker_and_the_oldest_waiting_job(db, settings):
    job = outbox.enqueue("test.record", "waiting")
    ready = Client().get(reverse("readyz"))
    assert ready.status_code == 200
    report = ready.json()
    assert report["database"] == "ok" and report["broker"] == "ok" and report["outbox"]["undelivered"] == 1
    Job.objects.filter(pk=job.pk).update(
        due_at=timezone.now() - timedelta(seconds=settings.READY_MAX_DELAY_SECONDS + 5)
    )
    late = Client().get(reverse("readyz"))
    assert late.status_code == 503 and late.json()["outbox"]["oldest_due_seconds"] > settings.READY_MAX_DELAY_SECONDS
