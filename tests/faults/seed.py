"""Run as ``python -m tests.faults.seed`` against a fault test's private database: migrate it, create a
practice, a counselor and a couple with an assessment assigned, and print the partners' links as JSON."""

import json

import django

django.setup()  # before the models are imported: this runs as its own program

from django.core.management import call_command  # noqa: E402

from tests.conftest import make_assignment, make_couple, make_practice, make_user  # noqa: E402


def main():
    call_command("migrate", verbosity=0, interactive=False)
    practice = make_practice("Riverside Counseling", "riverside")
    counselor = make_user(practice, "owner@riverside.example")
    couple = make_couple(counselor)
    assignment, tokens = make_assignment(couple)
    responses = {r.partner.position: r.pk for r in assignment.responses.select_related("partner")}
    print(json.dumps({"tokens": tokens, "responses": responses}))


if __name__ == "__main__":
    main()
