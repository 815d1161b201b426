import pytest
from django.db import transaction

from assessments.models import Reminder
from tests.conftest import make_assignment, wait_for

pytestmark = [pytest.mark.smoke, pytest.mark.worker]


def test_an_invitation_travels_through_the_broker_to_a_real_worker_and_is_mailed(world, celery_worker_process):
    worker = celery_worker_process
    # Invitations wait out the practice's quiet hours; this test runs at any hour of the day.
    world.practice.quiet_hours_start = world.practice.quiet_hours_end
    world.practice.save()
    with transaction.atomic():
        assignment, _ = make_assignment(world.couple)
    invitations = Reminder.objects.filter(response__assignment=assignment, kind=Reminder.Kind.INVITATION)
    sent = wait_for(lambda: invitations.filter(status=Reminder.Status.SENT).count() == 2, timeout=90)
    assert sent, worker.output()[-3000:]
    text = "".join(p.read_text() for p in worker.mails())
    # The dispatcher, nudged by the commit, handed both invitations to the worker as one batch.
    assert sorted(line for line in text.splitlines() if line.startswith("To: ")) == [
        "To: jordan@example.com",
        "To: taylor@example.com",
    ]
    assert text.count("/a/") == 4  # each invitation carries its link in the text and the HTML part
