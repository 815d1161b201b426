"""Run as ``python -m tests.faults.seed [INVITATIONS]`` against a fault test's private database: migrate
it, create a practice, a counselor and a couple with an assessment assigned, and print the partners'
links as JSON. With INVITATIONS, that many invitations in all are waiting in the outbox (the two of
the assignment and resent ones), for tests of sending."""

import json
import sys

import django

django.setup()  # before the models are imported: this runs as its own program

from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

from assessments import reminders  # noqa: E402
from assessments.models import Reminder  # noqa: E402
from tests.conftest import make_assignment, make_couple, make_practice, make_user  # noqa: E402


def main():
    call_command("migrate", verbosity=0, interactive=False)
    practice = make_practice("Riverside Counseling", "riverside")
    counselor = make_user(practice, "owner@riverside.example")
    couple = make_couple(counselor)
    assignment, tokens = make_assignment(couple)
    responses = {r.partner.position: r.pk for r in assignment.responses.select_related("partner")}
    invitations = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    with transaction.atomic():
        for n in range(invitations - 2):
            response = assignment.responses.all()[n % 2]
            reminder = Reminder.objects.create(
                response=response, kind=Reminder.Kind.INVITATION, sequence=2 + n // 2, due_at=assignment.assigned_at
            )
            reminders.queue(reminder)
    print(json.dumps({"tokens": tokens, "responses": responses}))


if __name__ == "__main__":
    main()
