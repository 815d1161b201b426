"""Messages that could not be delivered: the counselor sees each, in words that say what happened, on
the couple's page and in the caseload, and can try again (audited; the row is queued again)."""

import errno
import smtplib
from datetime import timedelta

import pytest
from django.core.mail.backends.locmem import EmailBackend as MemoryBackend
from django.urls import reverse
from django.utils import timezone

from assessments.models import Reminder, SafetyAlert
from practice.models import AuditEvent, Job
from tests.assessments.answering_helpers import save, section_codes, start
from tests.assessments.test_inbox import header_count
from tests.conftest import client_for, deliver, make_assignment, page_text

FAILURES = {}  # recipient -> the exception the mail server's side raises for them


class ScriptedBackend(MemoryBackend):
    """The in-memory test backend, failing for the recipients named in FAILURES."""

    def send_messages(self, messages):
        for message in messages:
            for recipient in message.to:
                if recipient in FAILURES:
                    raise FAILURES[recipient]
        return super().send_messages(messages)


@pytest.fixture
def failing_mail(settings, world):
    settings.EMAIL_BACKEND = "tests.assessments.test_undelivered.ScriptedBackend"
    world.practice.quiet_hours_start = world.practice.quiet_hours_end
    world.practice.save()
    FAILURES.clear()
    yield FAILURES
    FAILURES.clear()


def last_try(kinds):
    """The next try of these rows is their last (as after a day of failing)."""
    Job.objects.filter(kind__in=kinds, status=Job.Status.PENDING).update(attempts=14)


def test_each_undelivered_message_is_shown_in_its_own_words_with_try_again(world, failing_mail, mailoutbox):
    _, tokens = make_assignment(world.couple)
    partner = start(tokens["A"])
    assert save(partner, section_codes()[-1][0], 3, 1).status_code == 200  # an urgent safety answer
    failing_mail["taylor@example.com"] = smtplib.SMTPRecipientsRefused({"taylor@example.com": (550, b"no such user")})
    failing_mail["jordan@example.com"] = OSError(errno.ENOSPC, "No space left on device")
    failing_mail["owner@riverside.example"] = smtplib.SMTPDataError(451, b"4.3.0 try again later")
    last_try(["partner_email", "safety_alert"])
    deliver()
    assert Job.objects.filter(status=Job.Status.FAILED).count() == 3

    counselor = client_for(world.owner)
    page = page_text(counselor.get(reverse("assessments:couple", args=[world.couple.pk])))
    assert "Messages not delivered" in page
    assert "Invitation to Taylor could not be delivered: the address was rejected by the mail server" in page
    assert (
        "Invitation to Jordan could not be delivered: the disk the e-mail is written to is full "
        "(gave up after 15 tries)" in page
    )
    assert (
        "Your safety alert e-mail (the alert itself is on the comparison page) could not be delivered: "
        "the mail server asked to try again later (451) (gave up after 15 tries)" in page
    )
    assert page.count(">Try again</button>") == 3
    caseload = page_text(counselor.get(reverse("assessments:caseload")))
    assert caseload.count("Taylor & Jordan</a>: ") == 3

    # The mail server is fixed; the counselor tries the alert again from the caseload.
    failing_mail.clear()
    alert_job = Job.objects.get(kind="safety_alert")
    reply = counselor.post(reverse("assessments:retry_message", args=[alert_job.pk]), {"back": "caseload"})
    assert reply.status_code == 302 and reply["Location"] == reverse("assessments:caseload")
    alert_job.refresh_from_db()
    assert (alert_job.status, alert_job.attempts, alert_job.last_error) == (Job.Status.PENDING, 0, "")
    assert AuditEvent.objects.filter(action="message.retry", object_id=str(alert_job.pk)).exists()
    again = counselor.post(reverse("assessments:retry_message", args=[alert_job.pk]))  # a double click
    assert again.status_code == 302 and AuditEvent.objects.filter(action="message.retry").count() == 1
    deliver()
    assert SafetyAlert.objects.get().notified_at is not None
    assert [m.to for m in mailoutbox] == [["owner@riverside.example"]]

    # And Jordan's invitation from the couple page: the reminder is on its way again, then sent.
    jordan = Job.objects.get(reminder__response__partner__first_name="Jordan")
    counselor.post(reverse("assessments:retry_message", args=[jordan.pk]))
    assert Reminder.objects.get(job=jordan).status == Reminder.Status.CLAIMED
    deliver()
    assert Reminder.objects.get(job=jordan).status == Reminder.Status.SENT
    page = page_text(counselor.get(reverse("assessments:couple", args=[world.couple.pk])))
    assert "Invitation to Jordan could not be delivered" not in page
    assert "Invitation to Taylor could not be delivered" in page and page.count(">Try again</button>") == 1


def test_a_message_still_being_retried_is_shown_without_try_again(world, failing_mail):
    _, tokens = make_assignment(world.couple)
    partner = start(tokens["A"])
    save(partner, section_codes()[-1][0], 3, 1)
    failing_mail["owner@riverside.example"] = ConnectionRefusedError(111, "Connection refused")
    deliver()
    page = page_text(client_for(world.owner).get(reverse("assessments:couple", args=[world.couple.pk])))
    assert "not delivered yet, trying again: the mail server could not be reached" in page
    assert ">Try again</button>" not in page


def test_a_colleague_cannot_retry_another_counselors_message(world, failing_mail):
    make_assignment(world.couple)
    failing_mail["taylor@example.com"] = smtplib.SMTPRecipientsRefused({"taylor@example.com": (550, b"no")})
    deliver()
    job = Job.objects.get(status=Job.Status.FAILED)
    reply = client_for(world.colleague).post(reverse("assessments:retry_message", args=[job.pk]))
    assert reply.status_code == 404
    assert Job.objects.get(pk=job.pk).status == Job.Status.FAILED


def test_the_caseload_lists_only_the_counselors_own_undelivered_messages(world, failing_mail):
    make_assignment(world.couple)
    failing_mail["taylor@example.com"] = smtplib.SMTPRecipientsRefused({"taylor@example.com": (550, b"no")})
    deliver()
    caseload = reverse("assessments:caseload")
    assert "could not be delivered" in page_text(client_for(world.owner).get(caseload))
    assert "could not be delivered" not in page_text(client_for(world.colleague).get(caseload))


def test_the_caseload_lists_the_last_thirty_days_failures_and_the_couple_page_all_of_them(world, failing_mail):
    make_assignment(world.couple)
    failing_mail["taylor@example.com"] = smtplib.SMTPRecipientsRefused({"taylor@example.com": (550, b"no")})
    deliver()
    job = Job.objects.get(kind="partner_email", status=Job.Status.FAILED)
    caseload = reverse("assessments:caseload")
    client = client_for(world.owner)
    Job.objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(days=29))
    assert "could not be delivered" in page_text(client.get(caseload))
    Job.objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(days=31))
    assert "could not be delivered" not in page_text(client.get(caseload))
    couple_page = page_text(client.get(reverse("assessments:couple", args=[world.couple.pk])))
    assert "could not be delivered" in couple_page


def test_an_undelivered_invitation_is_told_once_on_the_couple_page(world, failing_mail):
    make_assignment(world.couple)
    failing_mail["taylor@example.com"] = smtplib.SMTPRecipientsRefused({"taylor@example.com": (550, b"no such user")})
    last_try(["partner_email"])
    deliver()
    page = page_text(client_for(world.owner).get(reverse("assessments:couple", args=[world.couple.pk])))
    # The card says why, with Try again; the reminders panel only marks the line.
    assert page.count("the address was rejected by the mail server") == 1
    assert page.index("Messages not delivered") < page.index("Invitation not delivered (see above)")


def test_the_inbox_count_follows_an_invitation_given_up_on_and_tried_again(world, failing_mail):
    make_assignment(world.couple)
    assert header_count(world.owner) == 0
    failing_mail["taylor@example.com"] = smtplib.SMTPRecipientsRefused({"taylor@example.com": (550, b"no such user")})
    last_try(["partner_email"])
    deliver()
    # "Could not be delivered" is one item for the administration, however many e-mails failed.
    assert header_count(world.owner) == 1
    failing_mail.clear()
    taylor = Job.objects.get(reminder__response__partner__first_name="Taylor")
    client_for(world.owner).post(reverse("assessments:retry_message", args=[taylor.pk]))
    assert header_count(world.owner) == 0
    deliver()
    assert Reminder.objects.get(job=taylor).status == Reminder.Status.SENT and header_count(world.owner) == 0
