"""The mail server refusing connections, then answering 451 "try again later", then accepting:
every message arrives exactly once, soon after it accepts, and the counselor is told in the
meantime, in words that say what is happening. A real worker and beat, a real SMTP server."""

import time

import pytest
from django.urls import reverse
from django.utils import timezone

from assessments.models import Reminder, SafetyAlert
from practice.models import Job
from tests.assessments.answering_helpers import save, section_codes, start
from tests.conftest import client_for, make_assignment, page_text, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.fault]

PROBE_SECONDS = 10


def test_mail_refused_then_451_then_accepted_each_message_arrives_once_within_a_minute(
    quiet_free, redis_server, mail_server, site_processes
):
    world = quiet_free
    mail_server.stop()  # nothing listens: connections are refused
    site = site_processes(
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=mail_server.port,
        EMAIL_USE_TLS="false",
        EMAIL_TIMEOUT=2,
        OUTBOX_PROBE_SECONDS=PROBE_SECONDS,
    ).start()
    first, tokens = make_assignment(world.couple)
    make_assignment(world.other)
    partner = start(tokens["A"])
    assert save(partner, section_codes()[-1][0], 3, 1).status_code == 200  # an urgent safety answer
    mail_jobs = Job.objects.filter(kind__in=["partner_email", "safety_alert"])
    assert mail_jobs.count() == 5
    tried = mail_jobs.filter(attempts__gte=1, status=Job.Status.PENDING)
    assert wait_for(lambda: tried.count() == 5, 30), site.output()
    assert set(tried.values_list("last_error", flat=True)) == {"the mail server could not be reached"}
    counselor = client_for(world.owner)
    couple_page = page_text(counselor.get(reverse("assessments:couple", args=[world.couple.pk])))
    assert "Invitation not delivered yet, trying again: the mail server could not be reached" in couple_page
    assert SafetyAlert.objects.get().notified_at is None

    mail_server.set_mode("451")
    mail_server.start()
    refused_451 = Job.objects.filter(
        reminder__response__assignment=first, last_error="the mail server asked to try again later (451)"
    )
    assert wait_for(lambda: refused_451.exists(), 40), site.output()
    couple_page = page_text(counselor.get(reverse("assessments:couple", args=[world.couple.pk])))
    assert "not delivered yet, trying again: the mail server asked to try again later (451)" in couple_page
    time.sleep(3)
    assert mail_server.received == [] and mail_server.refused >= 1

    mail_server.set_mode("accept")
    accepted = time.monotonic()
    assert wait_for(lambda: len(mail_server.message_ids()) >= 5, 60), site.output()
    took = time.monotonic() - accepted
    print(f"held mail delivered {took:.1f} s after the server accepted again ({mail_server.refused} refused tries)")
    assert took < PROBE_SECONDS + 2 * 5 + 10  # a probe, a dispatch tick and the send
    time.sleep(3)  # a duplicate would land now
    ids = mail_server.message_ids()
    assert len(ids) == len(set(ids)) == 5, ids
    assert sum(m.startswith("<safety-alert-") for m in ids) == 1
    assert mail_jobs.filter(status=Job.Status.DONE).count() == 5
    assert Reminder.objects.filter(kind=Reminder.Kind.INVITATION, status=Reminder.Status.SENT).count() == 4
    alert = SafetyAlert.objects.get()
    assert alert.notified_at is not None and alert.notified_at > timezone.now() - timezone.timedelta(seconds=took + 5)
    assert first.pk  # the counselor's page now lists both invitations as sent
    couple_page = page_text(counselor.get(reverse("assessments:couple", args=[world.couple.pk])))
    assert "not delivered yet" not in couple_page
