"""Recompute every couple's caseload row from the couples, administrations, scores and alerts."""

from django.core.management.base import BaseCommand
from django.db import transaction

from assessments import caseload


class Command(BaseCommand):
    help = "Recompute every couple's caseload row (after a bulk import, a restore or a score recompute)."

    def handle(self, *args, **options):
        with transaction.atomic():
            count = caseload.rebuild()
        self.stdout.write(f"{count} caseload rows recomputed.")
