"""Reminders as plain functions on the real database, with injected clocks and Django's test outbox."""

import datetime
import re
import smtplib
import zoneinfo
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assessments import comparison, reminders
from assessments.models import Assignment, Reminder
from assessments.workflows import RefusedError, remind_now, submit
from practice import outbox
from practice.models import Job
from tests.conftest import make_assignment, make_couple

pytestmark = pytest.mark.smoke

NY = zoneinfo.ZoneInfo("America/New_York")
ROOT = Path(__file__).resolve().parents[2]


def ny(*args):
    return datetime.datetime(*args, tzinfo=NY)


def kinds(response):
    return list(response.reminders.order_by("due_at").values_list("kind", flat=True))


def rows(assignment, **filters):
    return Reminder.objects.filter(response__assignment=assignment, **filters)


def use_new_york(practice, *, quiet=True):
    practice.time_zone = "America/New_York"
    if quiet:  # the default policy's quiet hours
        practice.quiet_hours_start, practice.quiet_hours_end = datetime.time(21, 0), datetime.time(8, 0)
    else:
        practice.quiet_hours_start = practice.quiet_hours_end = datetime.time(0, 0)
    practice.save()


def make_due(reminder, when):
    Reminder.objects.filter(pk=reminder.pk).update(due_at=when)


def mark_sent(reminders_, at):
    """As if these reminders had gone out at ``at`` (their jobs are done)."""
    Job.objects.filter(reminder__in=reminders_).update(status=Job.Status.DONE, finished_at=at)
    reminders_.update(status=Reminder.Status.SENT, sent_at=at)


def send_now(reminder, now=None):
    """Queue one reminder (as the sweep or a workflow would) and let a worker do its job at ``now``."""
    now = now or timezone.now()
    reminder.refresh_from_db()
    if reminder.status == Reminder.Status.SCHEDULED:
        reminders.queue(reminder, now=now)
    Job.objects.filter(pk=reminder.job_id).update(status=Job.Status.QUEUED, due_at=now)
    outbox.run_one(reminder.job_id, now=now)
    reminder.refresh_from_db()
    return reminder


class RefusingBackend(LocmemBackend):
    """The mail server refuses (or drops) every message; set ``error`` before use."""

    error = None

    def send_messages(self, messages):
        raise self.error


@pytest.fixture
def refusing(settings):
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    return RefusingBackend


def partner_mails(to):
    return [m for m in mail.outbox if m.to == [to]]


# --- Planning from the policy -----------------------------------------------------------


def test_default_policy_plans_invitation_two_reminders_day_before_and_one_overdue_notice(world):
    now = timezone.now()
    assignment, _ = make_assignment(world.couple, days=7, now=now)
    response = assignment.responses.get(partner__position="A")
    planned = {r.kind: r.due_at for r in response.reminders.all()}
    assert planned == {
        "invitation": now,
        "reminder_1": now + timedelta(days=2),
        "reminder_2": now + timedelta(days=5),
        "before_due": assignment.due_at - timedelta(days=1),
        "overdue": assignment.due_at + timedelta(hours=1),
    }


def test_two_reminders_that_would_land_the_same_day_become_one(world):
    assignment, _ = make_assignment(world.couple, days=3)
    response = assignment.responses.get(partner__position="A")
    assert kinds(response) == ["invitation", "before_due", "overdue"]


def test_a_practice_policy_without_overdue_notice_and_one_reminder_is_followed(world):
    world.practice.reminder_policy = {"after_days": [3], "before_due_days": 0, "overdue_notice": False}
    world.practice.save()
    assignment, _ = make_assignment(world.couple, days=10)
    response = assignment.responses.get(partner__position="B")
    assert kinds(response) == ["invitation", "reminder_1"]


# --- Quiet hours ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "quiet"),
    [
        (ny(2026, 11, 10, 20, 59), False),
        (ny(2026, 11, 10, 21, 0), True),
        (ny(2026, 11, 11, 2, 30), True),
        (ny(2026, 11, 11, 7, 59), True),
        (ny(2026, 11, 11, 8, 0), False),
    ],
)
def test_quiet_hours_are_read_on_the_practices_wall_clock(world, when, quiet):
    use_new_york(world.practice)
    assert reminders.in_quiet_hours(world.practice, when) is quiet


def test_quiet_hours_follow_daylight_saving_time(world):
    use_new_york(world.practice)
    # 12:30 UTC is 07:30 in New York the day before clocks spring forward, 08:30 the day after.
    before = datetime.datetime(2026, 3, 7, 12, 30, tzinfo=datetime.UTC)
    after = datetime.datetime(2026, 3, 9, 12, 30, tzinfo=datetime.UTC)
    assert reminders.in_quiet_hours(world.practice, before)
    assert not reminders.in_quiet_hours(world.practice, after)
    # And the morning a night's reminders wait for is 08:00 local on the new offset.
    night = datetime.datetime(2026, 3, 8, 5, 0, tzinfo=datetime.UTC)  # 00:00 EST, the night of the change
    assert reminders.next_send_time(world.practice, night) == ny(2026, 3, 8, 8, 0)
    assert ny(2026, 3, 8, 8, 0).utcoffset() == timedelta(hours=-4)


def test_equal_start_and_end_means_no_quiet_hours(world):
    use_new_york(world.practice, quiet=False)
    assert not reminders.in_quiet_hours(world.practice, ny(2026, 11, 11, 3, 0))


def test_nothing_is_sent_during_quiet_hours_and_everything_due_then_goes_after_them(world):
    use_new_york(world.practice)
    evening = ny(2026, 11, 10, 18, 0)
    assignment, _ = make_assignment(world.couple, now=evening, days=7)
    rows(assignment).exclude(kind=Reminder.Kind.INVITATION).update(status=Reminder.Status.SKIPPED)
    # The counselor assigned at 18:00; the worker only gets to the invitations at 22:30, inside quiet hours.
    assert sorted(outbox.run_now(now=ny(2026, 11, 10, 22, 30)).values()) == ["later", "later"]
    assert mail.outbox == []
    assert outbox.run_now(now=ny(2026, 11, 11, 7, 59)) == {}
    assert sorted(outbox.run_now(now=ny(2026, 11, 11, 8, 0)).values()) == ["done", "done"]
    assert sorted(m.to[0] for m in mail.outbox) == ["jordan@example.com", "taylor@example.com"]
    assert reminders.sweep(now=ny(2026, 11, 11, 8, 1)).claimed == []  # nothing left for the sweep


def test_remind_now_during_quiet_hours_waits_for_the_morning(world):
    use_new_york(world.practice)
    assignment, _ = make_assignment(world.couple, now=ny(2026, 11, 10, 9, 0))
    mark_sent(rows(assignment, kind=Reminder.Kind.INVITATION), ny(2026, 11, 10, 9, 0))
    response = assignment.responses.get(partner__position="A")
    reminder = remind_now(response, now=ny(2026, 11, 10, 23, 0))
    assert reminder.job.due_at == ny(2026, 11, 11, 8, 0)
    assert outbox.run_now(now=ny(2026, 11, 10, 23, 30), kind="partner_email") == {}
    assert outbox.run_now(now=ny(2026, 11, 11, 8, 5), kind="partner_email") == {reminder.job.pk: "done"}
    assert [m.to for m in mail.outbox] == [["taylor@example.com"]]


# --- Sending once -----------------------------------------------------------------------


def test_a_reminder_e_mail_has_text_and_html_practice_due_date_link_and_unsubscribe(world):
    assignment, tokens = make_assignment(world.couple)
    invitation, reminder = (
        rows(assignment, response__partner__position="A", kind=k).get()
        for k in (Reminder.Kind.INVITATION, Reminder.Kind.REMINDER_1)
    )
    reminder = send_now(reminder)
    assert reminder.status == Reminder.Status.SENT
    (message,) = mail.outbox
    html = message.alternatives[0][0]
    due = timezone.localtime(assignment.due_at, world.practice.tz)
    for body in (message.body, html):
        assert "Riverside Counseling" in body
        assert f"{due:%A} {due.day} {due:%B %Y}" in body
        assert f"/a/{tokens['A']}/" in body
        assert "/stop-reminders/" in body
    assert message.subject == "A reminder from Riverside Counseling"
    assert message.extra_headers["Message-ID"] == f"<reminder-{reminder.pk}-reminder_1-0@127.0.0.1>"
    assert "/stop-reminders/" in message.extra_headers["List-Unsubscribe"]
    assert "Jordan" not in message.body  # nothing about the other partner
    assert send_now(invitation).status == Reminder.Status.SENT
    assert "/stop-reminders/" in mail.outbox[1].body and "has sent you a short questionnaire" in mail.outbox[1].body


def test_a_batch_of_reminders_costs_a_fixed_few_statements_a_message(world):
    """A worker's batch: one read of its rows, then per message the take, the re-read of the
    reminder with its world and live link, and the two rows marked: on PostgreSQL in one statement
    after the send (no BEGIN, no COMMIT), on SQLite in two. Pinned: one statement more a message is
    a third more round trips."""
    invitations = []
    for n in range(3):
        couple = make_couple(world.owner, f"Couple {n}", (f"A{n}", f"a{n}@example.com"), (f"B{n}", f"b{n}@example.com"))
        assignment, _ = make_assignment(couple)
        invitations += list(rows(assignment, kind=Reminder.Kind.INVITATION))
    jobs = [r.job_id for r in invitations]
    Job.objects.filter(pk__in=jobs).update(status=Job.Status.QUEUED)
    with CaptureQueriesContext(connection) as queries:
        outcomes = outbox.run(jobs)
    statements = [q["sql"] for q in queries.captured_queries]
    if connection.vendor == "postgresql":
        each = 3  # take, re-read, reminder sent with job done; no transaction around the send
        assert not [s for s in statements if "SAVEPOINT" in s], statements
    else:
        each = 4 + 2  # SQLite: the two marks in a short transaction after the send (its savepoints here)
    assert len(statements) <= 1 + each * len(jobs) + 1, statements  # + the mail channel's waiting rows brought forward
    assert set(outcomes.values()) == {"done"} and len(mail.outbox) == len(jobs)
    assert {r.attempts for r in Reminder.objects.filter(pk__in=[r.pk for r in invitations])} == {1}
    assert {m.to[0] for m in mail.outbox} == {r.response.partner.email for r in invitations}


def test_the_same_reminder_delivered_twice_goes_out_once(world):
    assignment, _ = make_assignment(world.couple)
    invitation = rows(assignment, kind=Reminder.Kind.INVITATION).first()
    Job.objects.filter(pk=invitation.job_id).update(status=Job.Status.QUEUED)
    assert outbox.run_one(invitation.job_id) == "done"
    assert outbox.run_one(invitation.job_id) == "taken"  # a second delivery of the same task
    assert len(mail.outbox) == 1
    invitation.refresh_from_db()
    assert invitation.status == Reminder.Status.SENT and invitation.attempts == 1 and invitation.sent_at


def test_a_reissued_link_is_the_one_the_reminder_carries(world):
    assignment, tokens = make_assignment(world.couple)
    response = assignment.responses.get(partner__position="A")
    new_token = response.issue_link()
    send_now(rows(assignment, response=response, kind=Reminder.Kind.INVITATION).get())
    assert new_token in mail.outbox[0].body and tokens["A"] not in mail.outbox[0].body


def test_no_reminder_goes_to_a_partner_who_has_submitted(world):
    assignment, _ = make_assignment(world.couple)
    response = assignment.responses.get(partner__position="A")
    mark_sent(rows(assignment, kind=Reminder.Kind.INVITATION), timezone.now() - timedelta(days=1))
    reminder = rows(assignment, response=response, kind=Reminder.Kind.REMINDER_1).get()
    make_due(reminder, timezone.now())
    assert reminders.sweep().claimed == [reminder.pk]  # queued, as if a worker were about to send it
    submit(response)
    outbox.run_now(kind="partner_email")
    assert mail.outbox == []
    assert not rows(assignment, response=response, status=Reminder.Status.SCHEDULED).exists()
    assert rows(assignment, response=response, kind=Reminder.Kind.REMINDER_1, status="skipped").exists()


def test_a_partner_who_submits_while_a_send_is_under_way_is_not_reminded(world):
    assignment, _ = make_assignment(world.couple)
    response = assignment.responses.get(partner__position="A")
    reminder = rows(assignment, response=response, kind=Reminder.Kind.INVITATION).get()
    # Submitted by a path that leaves the row queued: the send itself re-checks the world.
    type(response).objects.filter(pk=response.pk).update(submitted_at=timezone.now())
    reminder = send_now(reminder)
    assert (reminder.status, reminder.last_error) == ("skipped", "Taylor had finished")
    assert mail.outbox == []


def test_cancelled_paused_unsubscribed_and_expired_are_skipped_without_a_crash(world):
    now = timezone.now()
    assignment, _ = make_assignment(world.couple, now=now)
    a, b = assignment.responses.order_by("partner__position")
    r1a = rows(assignment, response=a, kind=Reminder.Kind.REMINDER_1).get()
    r1b = rows(assignment, response=b, kind=Reminder.Kind.REMINDER_1).get()
    world.couple.reminders_paused = True
    world.couple.save()
    assert send_now(r1a).last_error == "reminders were paused"
    # An invitation is not a reminder: it still goes out while reminders are paused.
    assert send_now(rows(assignment, response=a, kind=Reminder.Kind.INVITATION).get()).status == "sent"
    world.couple.reminders_paused = False
    world.couple.save()
    b.partner.reminders_unsubscribed_at = now
    b.partner.save()
    assert send_now(r1b).last_error == "Jordan unsubscribed from reminders"
    overdue = rows(assignment, response=a, kind=Reminder.Kind.OVERDUE).get()
    late = assignment.due_at + timedelta(days=world.practice.link_grace_days + 1)
    assert send_now(overdue, now=late).last_error == "the link had expired"
    Assignment.objects.filter(pk=assignment.pk).update(status=Assignment.Status.CANCELLED)
    before_due = rows(assignment, response=a, kind=Reminder.Kind.BEFORE_DUE).get()
    assert send_now(before_due, now=before_due.due_at).last_error == "the assessment was cancelled"
    assert len(mail.outbox) == 1


def test_a_deleted_partners_reminder_is_simply_gone(world):
    assignment, _ = make_assignment(world.couple)
    world.couple.partners.get(position="A").delete()
    world.couple.partners.get(position="B").delete()
    assert list(outbox.run_now(kind="partner_email").values()) == ["done", "done"]
    assert reminders.sweep().claimed == []
    assert mail.outbox == []


def test_a_bounced_address_is_recorded_in_words_for_the_counselor(world, refusing):
    refusing.error = smtplib.SMTPRecipientsRefused({"jordan@example.com": (550, b"5.1.1 No such user")})
    assignment, _ = make_assignment(world.couple)
    reminder = send_now(rows(assignment, response__partner__position="B", kind=Reminder.Kind.INVITATION).get())
    assert reminder.status == Reminder.Status.FAILED and reminder.attempts == 1
    assert reminder.last_error == "the address was rejected by the mail server"
    assignment.couple = world.couple
    world.couple.practice = world.practice
    (loaded,) = comparison.administrations(world.couple)
    loaded.couple = world.couple
    (jordan,) = [p for p in reminders.panels([loaded])[loaded.pk] if p.partner.first_name == "Jordan"]
    assert [line.text for line in jordan.lines if line.state == "failed"] == ["Invitation not delivered (see above)"]


def test_transient_mail_errors_back_off_then_fail_after_the_last_try(world, refusing):
    refusing.error = smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
    assignment, _ = make_assignment(world.couple)
    reminder = rows(assignment, response__partner__position="A", kind=Reminder.Kind.INVITATION).get()
    job = reminder.job
    kind = outbox.kinds()["partner_email"]
    waits = []
    for attempt in range(1, kind.max_attempts):
        Job.objects.filter(pk=job.pk).update(status=Job.Status.QUEUED)
        assert outbox.run_one(job.pk) == "retry"
        job.refresh_from_db()
        waits.append((job.due_at - timezone.now()).total_seconds())
        assert (job.status, job.attempts, job.last_error) == (
            "pending",
            attempt,
            "the mail server could not be reached",
        )
        reminder.refresh_from_db()
        assert reminder.status == Reminder.Status.CLAIMED  # still on its way, as the counselor sees it
    assert waits[0] <= 30 and max(waits) <= 24 * 3600 and waits[-1] > 3600
    Job.objects.filter(pk=job.pk).update(status=Job.Status.QUEUED)
    assert outbox.run_one(job.pk) == "failed"
    reminder.refresh_from_db()
    assert reminder.status == Reminder.Status.FAILED
    assert reminder.last_error == f"the mail server could not be reached (gave up after {kind.max_attempts} tries)"


def test_a_backlog_after_an_outage_sends_only_the_latest_due_reminder_per_partner(world):
    start = timezone.now() - timedelta(days=5, hours=12)
    assignment, _ = make_assignment(world.couple, now=start, days=7)
    mark_sent(rows(assignment, kind=Reminder.Kind.INVITATION), start)
    # The beat was down for five and a half days: both reminders are due for each partner.
    assert rows(assignment, status=Reminder.Status.SCHEDULED, due_at__lte=timezone.now()).count() == 4
    result = reminders.sweep()
    claimed = Reminder.objects.filter(pk__in=result.claimed)
    assert sorted(claimed.values_list("kind", flat=True)) == ["reminder_2", "reminder_2"]
    assert result.skipped == 2
    assert set(rows(assignment, status="skipped").values_list("last_error", flat=True)) == {
        "replaced by a later reminder"
    }
    outbox.run_now()
    assert len(mail.outbox) == 2


def test_two_sweeps_at_once_queue_each_reminder_once(world, django_capture_on_commit_callbacks):
    assignment, _ = make_assignment(world.couple)
    now = timezone.now()
    mark_sent(rows(assignment, kind=Reminder.Kind.INVITATION), now - timedelta(days=1))
    rows(assignment, kind=Reminder.Kind.REMINDER_1).update(due_at=now)
    later = now + reminders.MIN_GAP
    with django_capture_on_commit_callbacks():
        first = reminders.sweep(now=later)
        second = reminders.sweep(now=later)
    assert len(first.claimed) == 2 and second.claimed == []
    assert Job.objects.filter(kind="partner_email", reminder__kind=Reminder.Kind.REMINDER_1).count() == 2


def test_an_automatic_reminder_right_after_a_manual_one_is_not_sent(world):
    now = timezone.now()
    assignment, _ = make_assignment(world.couple, now=now - timedelta(days=2, hours=1))
    response = assignment.responses.get(partner__position="A")
    mark_sent(rows(assignment, kind=Reminder.Kind.INVITATION), now - timedelta(days=2))
    manual = remind_now(response, now=now - timedelta(hours=2))
    send_now(manual, now=now - timedelta(hours=2))
    result = reminders.sweep(now=now)
    assert Reminder.objects.get(response=response, kind="reminder_1").last_error == (
        "another reminder went out less than 12 hours earlier"
    )
    assert len(result.claimed) == 1  # Jordan's first reminder still goes


# --- The counselor's notices --------------------------------------------------------------


def test_both_finished_e_mail_goes_to_the_counselor_exactly_once(world):
    assignment, _ = make_assignment(world.couple)
    for response in assignment.responses.all():
        submit(response)
    assert Job.objects.filter(key=f"both-finished:{assignment.pk}").count() == 1
    results = [reminders.notify_counselor(assignment.pk, "both_finished") for _ in range(3)]
    assert results == ["sent", "not needed", "not needed"]
    (message,) = mail.outbox
    assert message.to == ["owner@riverside.example"]
    assert "Both partners of Taylor & Jordan have finished" in message.body
    assert f"/couples/{world.couple.pk}/" in message.body


def test_a_past_due_date_gives_the_counselor_one_overdue_e_mail_naming_who_is_unfinished(world):
    now = timezone.now()
    assignment, _ = make_assignment(world.couple, now=now - timedelta(days=8), days=7)
    submit(assignment.responses.get(partner__position="A"))
    overdue = Job.objects.get(key=f"overdue:{assignment.pk}")
    assert overdue.due_at == assignment.due_at  # written at assign, due when the assessment is
    outbox.run_now(now=now, kind="counselor_notice")
    assert reminders.notify_counselor(assignment.pk, "overdue", now=now) == "not needed"
    (message,) = [m for m in mail.outbox if m.to == ["owner@riverside.example"]]
    assert "Not finished yet: Jordan." in message.body
    assert Assignment.objects.overdue(now).filter(pk=assignment.pk).exists()


def test_a_failed_counselor_notice_releases_its_claim_for_a_retry(world, refusing):
    refusing.error = smtplib.SMTPServerDisconnected("gone")
    assignment, _ = make_assignment(world.couple)
    for response in assignment.responses.all():
        submit(response)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        reminders.notify_counselor(assignment.pk, "both_finished")
    assert Assignment.objects.get(pk=assignment.pk).both_finished_notified_at is None


# --- Counselor actions --------------------------------------------------------------------


def test_remind_now_is_refused_within_twelve_hours_and_for_a_finished_partner(world):
    now = timezone.now()
    assignment, _ = make_assignment(world.couple, now=now - timedelta(hours=2))  # invited a while ago
    a, b = assignment.responses.order_by("partner__position")
    first = remind_now(a, now=now)
    assert (first.kind, first.sequence) == ("manual", 1)
    with pytest.raises(RefusedError, match="Taylor was reminded less than 12 hours ago"):
        remind_now(a, now=now + timedelta(hours=11))
    assert remind_now(a, now=now + timedelta(hours=12)).sequence == 2
    submit(b)
    with pytest.raises(RefusedError, match="Jordan has already finished"):
        remind_now(b, now=now)


def test_an_unsubscribe_token_names_one_partner_and_a_tampered_one_none(world):
    partner = world.couple.partners.get(position="A")
    token = reminders.unsubscribe_token(partner)
    assert reminders.partner_for_unsubscribe(token) == partner
    assert reminders.partner_for_unsubscribe(token[:-2] + "xx") is None
    assert reminders.partner_for_unsubscribe("nonsense") is None


# --- Nothing is scheduled through the broker ---------------------------------------------


def test_the_code_schedules_no_task_for_later_through_the_broker():
    """Work for later is an outbox row; no task is sent with a countdown or an eta (Redis would lose it)."""
    pattern = re.compile(r"\b(countdown|eta)\s*=")
    found = [
        path.relative_to(ROOT).as_posix()
        for app in ("practice", "clients", "assessments", "connection_practice")
        for path in ROOT.glob(f"{app}/**/*.py")
        if pattern.search(path.read_text())
    ]
    assert found == []


def test_a_second_couple_of_the_same_counselor_is_swept_independently(world):
    other = make_couple(world.owner, "Sam & Alex", ("Sam", "sam@example.com"), ("Alex", "alex@example.com"))
    now = timezone.now()
    for assignment in (make_assignment(world.couple)[0], make_assignment(other)[0]):
        mark_sent(rows(assignment, kind=Reminder.Kind.INVITATION), now - timedelta(days=1))
        rows(assignment, kind=Reminder.Kind.REMINDER_1).update(due_at=now)
    assert len(reminders.sweep(now=now).claimed) == 4
