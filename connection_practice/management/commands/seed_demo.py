"""The demo practice "Riverside Counseling", with couples in every state. Idempotent."""

import random
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from assessments import caseload, comparison
from assessments.models import Answer, Assignment, Instrument, Reminder, SafetyAlert
from assessments.workflows import assign, submit
from clients.models import Couple, Partner
from practice.models import Job, Membership, Practice, User

PASSWORD = "connection-demo"  # noqa: S105 - the documented demo password
STAFF = [
    ("admin@demo.example", "Dana Whitfield", Membership.Role.ADMIN),
    ("counselor@demo.example", "Maya Okonkwo", Membership.Role.COUNSELOR),
    ("counselor2@demo.example", "Leo Marchetti", Membership.Role.COUNSELOR),
]

# label, counselor e-mail, partners ((first, last), (first, last)), story
COUPLES = [
    ("Rivera & Chen", "counselor@demo.example", (("Sofia", "Rivera"), ("Daniel", "Chen")), "not_assigned"),
    ("Okafor & Lind", "counselor@demo.example", (("Amara", "Okafor"), ("Jonas", "Lind")), "invited"),
    ("Patel & Morgan", "counselor@demo.example", (("Priya", "Patel"), ("Sam", "Morgan")), "one_finished"),
    ("Nguyen & Brooks", "counselor@demo.example", (("Linh", "Nguyen"), ("Marcus", "Brooks")), "both_finished"),
    ("Silva & Novak", "counselor@demo.example", (("Ana", "Silva"), ("Tomas", "Novak")), "overdue"),
    ("Adeyemi & Kowalski", "counselor2@demo.example", (("Tunde", "Adeyemi"), ("Ewa", "Kowalski")), "both_finished"),
    ("Fischer & Romero", "counselor2@demo.example", (("Hanna", "Fischer"), ("Luis", "Romero")), "invited"),
]


def answer_values(items, rng, level, partner_values=None, safety=None):
    """Plausible answers around a level (1-5, higher = healthier) for every item."""
    values = {}
    for item in items:
        if item.safety_code:
            values[item.code] = (safety or {}).get(item.safety_code, 1)
        elif item.predicts and partner_values:
            actual = partner_values.get(item.predicts) or 3
            values[item.code] = min(5, max(1, actual + rng.choice([-1, 0, 0, 0, 1])))
        else:
            target = 6 - level if item.reverse_keyed else level
            values[item.code] = min(item.scale_max, max(item.scale_min, round(target + rng.gauss(0, 0.8))))
    return values


def fill(response, items, values, *, when, upto=None):
    chosen = items if upto is None else items[:upto]
    Answer.objects.bulk_create(
        Answer(response=response, item=item, value=values[item.code], seq=1, updated_at=when) for item in chosen
    )
    response.identity_confirmed_at = response.consented_at = response.started_at = when
    response.share_consent = True
    response.last_saved_at = when
    response.save()


class Command(BaseCommand):
    help = "Create or refresh the demo practice Riverside Counseling (refuses to run with DEBUG off)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Run even when DEBUG is off.")

    def handle(self, *args, force=False, **options):
        if not settings.DEBUG and not force:
            raise CommandError("seed_demo refuses to run with DEBUG off (a production site?). Use --force to insist.")
        instrument = Instrument.current()
        if instrument is None:
            raise CommandError("No instrument is loaded: run `python manage.py migrate` first.")
        with transaction.atomic():
            links = self.seed(instrument)
        self.stdout.write("Demo practice: Riverside Counseling (riverside-counseling)")
        self.stdout.write(f"Sign in at {settings.SITE_URL}/accounts/login/ with password {PASSWORD!r}:")
        for email, name, role in STAFF:
            self.stdout.write(f"  {email:<26} {name} ({Membership.Role(role).label})")
        for label, partner, url in links:
            self.stdout.write(f"Partner link for {partner} ({label}, not started): {url}")

    def seed(self, instrument):
        practice, _ = Practice.objects.get_or_create(
            slug="riverside-counseling", defaults={"name": "Riverside Counseling", "time_zone": "America/New_York"}
        )
        users = {}
        for email, name, role in STAFF:
            user, _ = User.objects.get_or_create(email=email, defaults={"full_name": name})
            user.full_name, user.is_active = name, True
            user.set_password(PASSWORD)
            user.save()
            Membership.objects.update_or_create(user=user, defaults={"practice": practice, "role": role})
            users[email] = user
        items = list(instrument.items.all())
        now = timezone.now()
        links = []
        for index, (label, counselor, people, story) in enumerate(COUPLES):
            couple, created = Couple.objects.get_or_create(
                practice=practice, label=label, defaults={"counselor": users[counselor]}
            )
            if created:
                for position, (first, last) in zip("AB", people, strict=True):
                    Partner.objects.create(
                        couple=couple,
                        position=position,
                        first_name=first,
                        last_name=last,
                        email=f"{first.lower()}.{last.lower()}@demo.example",
                    )
                self.tell_story(couple, story, instrument, items, users[counselor], now, random.Random(index))
            if story == "invited" and not links:
                assignment = couple.assignments.filter(status=Assignment.Status.OPEN).first()
                for response in assignment.responses.select_related("partner").order_by("partner__position"):
                    if response.started_at is None:
                        links.append((label, response.partner.first_name, response.link_url(response.issue_link())))
        return links

    def tell_story(self, couple, story, instrument, items, counselor, now, rng):
        def administer(days_ago, due_after_days, levels, finish=(True, True), partial=None, safety=None):
            start = now - timedelta(days=days_ago)
            assignment, _ = assign(
                couple=couple,
                instrument=instrument,
                due_at=start + timedelta(days=due_after_days),
                by=counselor,
                now=start,
            )
            # Past reminders count as sent: the demo must not e-mail anyone on first start.
            Reminder.objects.filter(response__assignment=assignment, due_at__lte=now).update(
                status=Reminder.Status.SENT, sent_at=now, attempts=1
            )
            responses = list(assignment.responses.select_related("partner").order_by("partner__position"))
            values_a = answer_values(items, rng, levels[0], safety=(safety or {}).get("A"))
            values_b = answer_values(items, rng, levels[1], partner_values=values_a)
            values_a = answer_values(items, rng, levels[0], partner_values=values_b, safety=(safety or {}).get("A"))
            for response, values, done, upto in zip(
                responses, (values_a, values_b), finish, partial or (None, None), strict=True
            ):
                if done or upto:
                    fill(response, items, values, when=start + timedelta(days=1), upto=None if done else upto)
                if done:
                    submit(response, now=start + timedelta(days=2))
            # The counselor was told long ago; the worker must not e-mail them again now.
            Assignment.objects.filter(pk=assignment.pk, status=Assignment.Status.COMPLETED).update(
                both_finished_notified_at=now
            )
            # Nor re-send what the story's past already sent: the demo's outbox starts empty.
            SafetyAlert.objects.filter(response__assignment=assignment).update(notified_at=now)
            Job.objects.filter(practice=couple.practice, status=Job.Status.PENDING).update(
                status=Job.Status.CANCELLED, finished_at=now
            )
            Reminder.objects.filter(response__assignment=assignment, status=Reminder.Status.CLAIMED).update(
                status=Reminder.Status.SENT, sent_at=now, attempts=1
            )
            # What the cancelled jobs and the answers filled in bulk would have left: the stored
            # comparison and the couple's caseload row (its last activity).
            comparison.store_report(assignment.pk)
            caseload.refresh(couple.pk)
            return assignment

        if story == "invited":
            administer(1, 7, (4, 4), finish=(False, False))
        elif story == "one_finished":
            administer(3, 7, (4, 3), finish=(True, False), partial=(None, 20), safety={"A": {"S5": 3}})
        elif story == "both_finished":
            administer(56, 7, (3, 2), finish=(True, True))
            administer(6, 7, (4, 3), finish=(True, True))
        elif story == "overdue":
            administer(10, 7, (3, 3), finish=(False, False), partial=(12, None))
