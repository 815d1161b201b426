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
from django.utils import timezone

from assessments import reminders
from assessments.models import Assignment, Reminder, submit
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


def test_nothing_is_sent_during_quiet_hours_and_everything_due_then_goes_after_them(world, settings):
    use_new_york(world.practice)
    evening = ny(2026, 11, 10, 18, 0)
    assignment, _ = make_assignment(world.couple, now=evening, days=7)
    rows(assignment).exclude(kind=Reminder.Kind.INVITATION).update(status=Reminder.Status.SKIPPED)
    # The counselor assigned at 18:00; the worker only gets to it at 22:30, inside quiet hours.
    night = ny(2026, 11, 10, 22, 30)
    assert reminders.sweep(now=night).claimed == []
    for reminder in rows(assignment, kind=Reminder.Kind.INVITATION):
        assert reminders.send(reminder.pk, now=night).status == "quiet"
    assert mail.outbox == []
    assert reminders.sweep(now=ny(2026, 11, 11, 7, 59)).claimed == []
    morning = ny(2026, 11, 11, 8, 0)
    claimed = reminders.sweep(now=morning).claimed
    assert len(claimed) == 2
    assert [reminders.send(pk, now=morning).status for pk in claimed] == ["sent", "sent"]
    assert sorted(m.to[0] for m in mail.outbox) == ["jordan@example.com", "taylor@example.com"]


def test_remind_now_during_quiet_hours_waits_for_the_morning(world):
    use_new_york(world.practice)
    assignment, _ = make_assignment(world.couple, now=ny(2026, 11, 10, 9, 0))
    response = assignment.responses.get(partner__position="A")
    reminder = reminders.remind_now(response, now=ny(2026, 11, 10, 23, 0))
    assert reminders.send(reminder.pk, now=ny(2026, 11, 10, 23, 0)).status == "quiet"
    claimed = reminders.sweep(now=ny(2026, 11, 11, 8, 5)).claimed
    # Taylor's manual reminder (and Jordan's invitation, never sent in this test) go in the morning.
    assert reminder.pk in claimed and len(claimed) == 2


# --- Sending once -----------------------------------------------------------------------


def test_a_reminder_e_mail_has_text_and_html_practice_due_date_link_and_unsubscribe(world):
    assignment, tokens = make_assignment(world.couple)
    invitation, reminder = (
        rows(assignment, response__partner__position="A", kind=k).get()
        for k in (Reminder.Kind.INVITATION, Reminder.Kind.REMINDER_1)
    )
    make_due(reminder, timezone.now())
    assert reminders.send(reminder.pk).status == "sent"
    (message,) = mail.outbox
    html = message.alternatives[0][0]
    due = timezone.localtime(assignment.due_at, world.practice.tz)
    for body in (message.body, html):
        assert "Riverside Counseling" in body
        assert f"{due:%A} {due.day} {due:%B %Y}" in body
        assert f"/a/{tokens['A']}/" in body
        assert "/stop-reminders/" in body
    assert message.subject == "Riverside Counseling: a reminder about your Connection Assessment"
    assert message.extra_headers["Message-ID"] == f"<reminder-{reminder.pk}-reminder_1-0@127.0.0.1>"
    assert "/stop-reminders/" in message.extra_headers["List-Unsubscribe"]
    assert "Jordan" not in message.body  # nothing about the other partner
    assert reminders.send(invitation.pk).status == "sent"
    assert "/stop-reminders/" in mail.outbox[1].body and "has invited you" in mail.outbox[1].body


def test_the_same_reminder_sent_twice_goes_out_once(world):
    assignment, _ = make_assignment(world.couple)
    invitation = rows(assignment, kind=Reminder.Kind.INVITATION).first()
    assert reminders.send(invitation.pk).status == "sent"
    assert reminders.send(invitation.pk).status == "done"
    assert len(mail.outbox) == 1
    invitation.refresh_from_db()
    assert invitation.status == Reminder.Status.SENT and invitation.attempts == 1 and invitation.sent_at


def test_a_reissued_link_is_the_one_the_reminder_carries(world):
    assignment, tokens = make_assignment(world.couple)
    response = assignment.responses.get(partner__position="A")
    new_token = response.issue_link()
    reminders.send(rows(assignment, response=response, kind=Reminder.Kind.INVITATION).get().pk)
    assert new_token in mail.outbox[0].body and tokens["A"] not in mail.outbox[0].body


def test_no_reminder_goes_to_a_partner_who_has_submitted(world):
    assignment, _ = make_assignment(world.couple)
    response = assignment.responses.get(partner__position="A")
    reminder = rows(assignment, response=response, kind=Reminder.Kind.REMINDER_1).get()
    make_due(reminder, timezone.now())
    reminders.sweep()  # queued, as if the task were on its way
    submit(response)
    assert reminders.send(reminder.pk).status == "done"
    assert mail.outbox == []
    assert not rows(assignment, response=response, status=Reminder.Status.SCHEDULED).exists()


def test_a_partner_who_submits_while_a_send_is_queued_is_not_reminded(world):
    assignment, _ = make_assignment(world.couple)
    response = assignment.responses.get(partner__position="A")
    reminder = rows(assignment, response=response, kind=Reminder.Kind.INVITATION).get()
    # Submitted by a path that leaves the row scheduled: the send itself re-checks the world.
    type(response).objects.filter(pk=response.pk).update(submitted_at=timezone.now())
    outcome = reminders.send(reminder.pk)
    assert (outcome.status, outcome.detail) == ("skipped", "Taylor had finished")
    assert mail.outbox == []


def test_cancelled_paused_unsubscribed_and_expired_are_skipped_without_a_crash(world):
    now = timezone.now()
    assignment, _ = make_assignment(world.couple, now=now)
    a, b = assignment.responses.order_by("partner__position")
    r1a = rows(assignment, response=a, kind=Reminder.Kind.REMINDER_1).get()
    r1b = rows(assignment, response=b, kind=Reminder.Kind.REMINDER_1).get()
    for r in (r1a, r1b):
        make_due(r, now)
    world.couple.reminders_paused = True
    world.couple.save()
    assert reminders.send(r1a.pk).detail == "reminders were paused"
    # An invitation is not a reminder: it still goes out while reminders are paused.
    assert reminders.send(rows(assignment, response=a, kind=Reminder.Kind.INVITATION).get().pk).status == "sent"
    world.couple.reminders_paused = False
    world.couple.save()
    b.partner.reminders_unsubscribed_at = now
    b.partner.save()
    assert reminders.send(r1b.pk).detail == "Jordan unsubscribed from reminders"
    overdue = rows(assignment, response=a, kind=Reminder.Kind.OVERDUE).get()
    late = assignment.due_at + timedelta(days=world.practice.link_grace_days + 1)
    assert reminders.send(overdue.pk, now=late).detail == "the link had expired"
    Assignment.objects.filter(pk=assignment.pk).update(status=Assignment.Status.CANCELLED)
    before_due = rows(assignment, response=a, kind=Reminder.Kind.BEFORE_DUE).get()
    assert reminders.send(before_due.pk, now=before_due.due_at).detail == "the assessment was cancelled"
    assert len(mail.outbox) == 1


def test_a_deleted_partners_reminder_is_simply_gone(world):
    assignment, _ = make_assignment(world.couple)
    reminder_id = rows(assignment, kind=Reminder.Kind.INVITATION).first().pk
    world.couple.partners.get(position="A").delete()
    world.couple.partners.get(position="B").delete()
    assert reminders.send(reminder_id).status == "gone"
    assert reminders.sweep().claimed == []


def test_a_bounced_address_is_recorded_in_words_for_the_counselor(world, refusing):
    refusing.error = smtplib.SMTPRecipientsRefused({"jordan@example.com": (550, b"5.1.1 No such user")})
    assignment, _ = make_assignment(world.couple)
    reminder = rows(assignment, response__partner__position="B", kind=Reminder.Kind.INVITATION).get()
    assert reminders.send(reminder.pk).status == "failed"
    reminder.refresh_from_db()
    assert reminder.status == Reminder.Status.FAILED and reminder.attempts == 1
    (jordan,) = [p for p in reminders.panel(assignment) if p.partner.first_name == "Jordan"]
    assert jordan.failures == ["Reminder to Jordan failed: address rejected"]


def test_transient_mail_errors_retry_with_bounded_backoff_then_fail_after_five_tries(world, refusing):
    refusing.error = smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
    assignment, _ = make_assignment(world.couple)
    reminder = rows(assignment, response__partner__position="A", kind=Reminder.Kind.INVITATION).get()
    delays = []
    for _ in range(4):
        outcome = reminders.send(reminder.pk)
        assert outcome.status == "retry"
        delays.append(outcome.retry_in)
    assert all(1 <= d <= reminders.MAX_COUNTDOWN for d in delays)
    reminder.refresh_from_db()
    assert (reminder.status, reminder.attempts, reminder.last_error) == ("scheduled", 4, "mail server unreachable")
    assert reminders.send(reminder.pk).status == "failed"
    reminder.refresh_from_db()
    assert (reminder.status, reminder.last_error) == ("failed", "mail server unreachable after 5 tries")


def test_backoff_grows_exponentially_with_jitter_and_never_exceeds_four_minutes():
    samples = {attempt: [reminders.backoff(attempt) for _ in range(200)] for attempt in range(1, 10)}
    assert max(samples[1]) <= 15 and max(samples[2]) <= 30 and min(samples[4]) >= 60
    assert len(set(samples[3])) > 5  # jitter: racing retries spread out
    assert max(max(s) for s in samples.values()) <= reminders.MAX_COUNTDOWN <= 300


def test_a_send_in_progress_is_left_alone_until_its_lease_ends_then_taken_over(world):
    assignment, _ = make_assignment(world.couple)
    reminder = rows(assignment, response__partner__position="A", kind=Reminder.Kind.INVITATION).get()
    started = timezone.now()
    # A worker took the row and died inside the SMTP conversation.
    Reminder.objects.filter(pk=reminder.pk).update(status=Reminder.Status.CLAIMED, claimed_at=started, attempts=1)
    busy = reminders.send(reminder.pk, now=started + timedelta(seconds=1))
    assert busy.status == "busy" and 0 < busy.retry_in <= reminders.send_lease().total_seconds()
    assert reminders.sweep(now=started + timedelta(seconds=1)).released == 0
    assert mail.outbox == []
    assert reminders.send(reminder.pk, now=started + reminders.send_lease()).status == "sent"
    assert len(mail.outbox) == 1
    reminder.refresh_from_db()
    assert reminder.attempts == 2


def test_the_sweep_requeues_a_dead_senders_row_after_the_lease_and_never_a_sent_one(world):
    assignment, _ = make_assignment(world.couple)
    a, b = rows(assignment, kind=Reminder.Kind.INVITATION).order_by("response__partner__position")
    long_ago = timezone.now() - timedelta(hours=1)
    Reminder.objects.filter(pk=a.pk).update(status=Reminder.Status.CLAIMED, claimed_at=long_ago)
    Reminder.objects.filter(pk=b.pk).update(status=Reminder.Status.SENT, claimed_at=long_ago, sent_at=long_ago)
    result = reminders.sweep()
    assert result.released == 1 and result.claimed == [a.pk]
    assert Reminder.objects.get(pk=b.pk).status == Reminder.Status.SENT


def test_a_queued_row_whose_message_was_lost_is_queued_again_after_the_queue_lease(world):
    assignment, _ = make_assignment(world.couple)
    invitations = rows(assignment, kind=Reminder.Kind.INVITATION)
    now = timezone.now()
    assert len(reminders.sweep(now=now).claimed) == 2
    assert reminders.sweep(now=now + timedelta(minutes=1)).claimed == []
    assert len(reminders.sweep(now=now + reminders.QUEUE_LEASE + timedelta(seconds=1)).claimed) == 2
    assert invitations.filter(status=Reminder.Status.SCHEDULED).count() == 2


def test_a_backlog_after_an_outage_sends_only_the_latest_due_reminder_per_partner(world):
    start = timezone.now() - timedelta(days=5, hours=12)
    assignment, _ = make_assignment(world.couple, now=start, days=7)
    # The workers were down for five and a half days: the invitation and both reminders are due.
    assert rows(assignment, due_at__lte=timezone.now()).count() == 6
    result = reminders.sweep()
    claimed = Reminder.objects.filter(pk__in=result.claimed)
    assert sorted(claimed.values_list("kind", flat=True)) == ["reminder_2", "reminder_2"]
    assert result.skipped == 4
    assert set(rows(assignment, status="skipped").values_list("last_error", flat=True)) == {
        "replaced by a later reminder"
    }
    for pk in result.claimed:
        reminders.send(pk)
    assert len(mail.outbox) == 2


def test_two_sweeps_at_once_claim_each_row_once(world, django_capture_on_commit_callbacks):
    assignment, _ = make_assignment(world.couple)
    now = timezone.now()
    with django_capture_on_commit_callbacks() as enqueued:
        first = reminders.sweep(now=now)
        second = reminders.sweep(now=now)
    assert len(first.claimed) == 2 and second.claimed == []
    assert len(enqueued) == 2


def test_an_automatic_reminder_right_after_a_manual_one_is_not_sent(world):
    now = timezone.now()
    assignment, _ = make_assignment(world.couple, now=now - timedelta(days=2, hours=1))
    response = assignment.responses.get(partner__position="A")
    rows(assignment, kind=Reminder.Kind.INVITATION).update(status="sent", sent_at=now - timedelta(days=2))
    manual = reminders.remind_now(response, now=now - timedelta(hours=2))
    reminders.send(manual.pk, now=now - timedelta(hours=2))
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
    assert reminders.sweep(now=now).overdue_notices == [assignment.pk]
    assert reminders.notify_counselor(assignment.pk, "overdue", now=now) == "sent"
    assert reminders.notify_counselor(assignment.pk, "overdue", now=now) == "not needed"
    assert reminders.sweep(now=now + timedelta(minutes=10)).overdue_notices == []
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
    assignment, _ = make_assignment(world.couple, now=now)
    a, b = assignment.responses.order_by("partner__position")
    first = reminders.remind_now(a, now=now)
    assert (first.kind, first.sequence) == ("manual", 1)
    with pytest.raises(reminders.RefusedError, match="Taylor was reminded less than 12 hours ago"):
        reminders.remind_now(a, now=now + timedelta(hours=11))
    assert reminders.remind_now(a, now=now + timedelta(hours=12)).sequence == 2
    submit(b)
    with pytest.raises(reminders.RefusedError, match="Jordan has already finished"):
        reminders.remind_now(b, now=now)


def test_an_unsubscribe_token_names_one_partner_and_a_tampered_one_none(world):
    partner = world.couple.partners.get(position="A")
    token = reminders.unsubscribe_token(partner)
    assert reminders.partner_for_unsubscribe(token) == partner
    assert reminders.partner_for_unsubscribe(token[:-2] + "xx") is None
    assert reminders.partner_for_unsubscribe("nonsense") is None


# --- No long countdowns anywhere ----------------------------------------------------------


def test_the_code_schedules_no_countdown_or_eta_longer_than_five_minutes():
    pattern = re.compile(r"\b(countdown|eta)\s*=\s*([^\n]+)")
    found = []
    for path in [*ROOT.glob("practice/**/*.py"), *ROOT.glob("clients/**/*.py"), *ROOT.glob("assessments/**/*.py")]:
        for match in pattern.finditer(path.read_text()):
            found.append((path.relative_to(ROOT).as_posix(), match.group(1), match.group(2).strip()))
    for path, name, value in found:
        if value.isdigit():
            assert int(value) <= 300, (path, name, value)
        else:
            # Every computed countdown is capped by MAX_COUNTDOWN or comes from backoff(), itself capped.
            assert "MAX_COUNTDOWN" in value or "backoff(" in value, (path, name, value)
    assert reminders.MAX_COUNTDOWN <= 300
    assert reminders.send_lease().total_seconds() <= 300


def test_a_second_couple_of_the_same_counselor_is_swept_independently(world):
    other = make_couple(world.owner, "Sam & Alex", ("Sam", "sam@example.com"), ("Alex", "alex@example.com"))
    make_assignment(world.couple)
    make_assignment(other)
    assert len(reminders.sweep().claimed) == 4
